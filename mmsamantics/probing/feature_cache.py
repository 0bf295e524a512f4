"""Encode a probe dataset once with the frozen encoder and train the head on the cache.

Because the encoder is frozen and the probe pipelines are deterministic, each image has
exactly one feature; computing it once per split and training ``LinearClsHead`` on the
stored (N, C) array gives the same head as training on images (same sampler seed, same
head initialisation), for a fraction of the cost: SAM ViT-H at 1024 px dominates every
epoch otherwise. Random augmentations break that equivalence, so they are refused.

A cache is keyed by the config's encoder/data description and by what the config text
does not show: a SHA-1 of the frozen encoder's weights as loaded (a checkpoint re-saved at
the same path changes it), the encoder's input size and the data preprocessor's effective
normalisation and padding. A cache whose key differs is re-encoded, and a warning names
both weight fingerprints.

Shape shorthand: N samples of a split, C the pooled feature width, B batch.
"""
import copy
import json
import logging
import os
import os.path as osp
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from torch import nn

from ..structures.signature import weights_fingerprint
from .cached_feature_dataset import load_feature_cache

_RANDOM_WORDS = ('Random', 'Jitter', 'AutoAugment', 'RandAugment', 'Mixup', 'CutMix',
                 'Albu', 'GaussianBlur', 'Lighting')


def random_transforms(pipeline) -> list:
    """Type names of the transforms in ``pipeline`` that draw random numbers."""
    return [t['type'] for t in pipeline or []
            if isinstance(t, dict) and any(w in str(t.get('type', '')) for w in _RANDOM_WORDS)]


@torch.no_grad()
def extract_features(model: nn.Module, dataloader,
                     amp: bool = False) -> Tuple[np.ndarray, np.ndarray, list]:
    """Pooled features of every sample of ``dataloader``, in its order.

    Args:
        model: an mmpretrain ``ImageClassifier`` (data preprocessor + frozen backbone
            [+ neck]); the head is not used.
        dataloader: yields mmengine batches (``inputs`` + ``data_samples``); must not
            shuffle.
        amp: run the encoder under ``torch.autocast`` (GPU fp16, as training with
            ``AmpOptimWrapper`` does); features are stored as float32 either way.

    Returns:
        ``(features (N, C) float32, labels (N,) int64, img_paths)``.
    """
    model.eval()
    feats, labels, paths = [], [], []
    device = next(iter(model.parameters()), torch.zeros(0)).device
    for batch in dataloader:
        data = model.data_preprocessor(batch, False)
        with torch.autocast(device.type, enabled=amp and device.type == 'cuda'):
            out = model.extract_feat(data['inputs'])  # backbone (+ neck): ((B, C),)
        f = out[-1] if isinstance(out, (tuple, list)) else out
        if f.dim() != 2:
            raise ValueError(f'the encoder returned {tuple(f.shape)}, not pooled (B, C) '
                             'features: only pooled probe backbones can be cached')
        feats.append(f.float().cpu().numpy())
        for s in data['data_samples']:
            labels.append(int(s.gt_label.item()))
            paths.append(str(s.get('img_path', '')))
    return np.concatenate(feats).astype(np.float32), np.asarray(labels, np.int64), paths


def save_feature_cache(path: str, features: np.ndarray, labels: np.ndarray, classes,
                       img_paths, meta: dict) -> str:
    """Write one split's cache (see :mod:`.cached_feature_dataset` for the layout)."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    np.savez(path, features=features, labels=labels,
             classes=np.asarray([str(c) for c in classes]),
             img_paths=np.asarray(img_paths), meta=np.asarray(json.dumps(meta)))
    return path


def _cache_meta(cfg: Config, split: str) -> dict:
    """What identifies a cache: the encoder and the split's data and pipeline."""
    loader = cfg[f'{split}_dataloader']
    ds = copy.deepcopy(loader['dataset'])
    return dict(split=split, model=dict(backbone=cfg.model.backbone,
                                        neck=cfg.model.get('neck'),
                                        data_preprocessor=cfg.model.get('data_preprocessor')),
                dataset=ds)


def encoder_fingerprint(model: nn.Module) -> dict:
    """What a cached feature depends on beyond the config text.

    Args:
        model: the built probe classifier (data preprocessor + backbone [+ neck]).

    Returns:
        ``dict(weights, img_size, preprocessing)``: ``weights`` is the SHA-1 of the
        backbone's (and neck's) state_dict tensors, ``img_size`` the encoder's input side
        (None: any), ``preprocessing`` the data preprocessor's mean/std, channel order and
        padding.
    """
    encoder = nn.ModuleDict(dict(backbone=model.backbone))
    if getattr(model, 'neck', None) is not None:
        encoder['neck'] = model.neck
    dp = model.data_preprocessor

    def values(name):
        t = getattr(dp, name, None)
        return None if t is None else [round(float(v), 6) for v in t.flatten()]

    pre = dict(type=type(dp).__name__,
               normalize=bool(getattr(dp, '_enable_normalize', False)),
               mean=values('mean'), std=values('std'),
               bgr_to_rgb=bool(getattr(dp, '_channel_conversion', False)),
               pad_size_divisor=getattr(dp, 'pad_size_divisor', None),
               pad_value=getattr(dp, 'pad_value', None))
    return dict(weights=weights_fingerprint(encoder),
                img_size=getattr(model.backbone, 'img_size', None),
                preprocessing=_jsonable(pre))


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=str))


def _stale_reason(path: str, stored: dict, meta: dict) -> str:
    old, new = stored.get('encoder') or {}, meta['encoder']
    if old.get('weights') != new['weights']:
        return (f'{path} was encoded with weights {old.get("weights")}, the encoder now '
                f'has {new["weights"]} (the checkpoint changed): re-encoding')
    changed = [k for k in sorted(set(stored) | set(meta)) if stored.get(k) != meta.get(k)]
    return f'{path} was encoded with another {"/".join(changed)}: re-encoding'


def build_feature_caches(cfg: Config, cache_dir: str, device: str = 'cpu',
                         amp: bool = False, rebuild: bool = False,
                         splits=('train', 'val')) -> Dict[str, str]:
    """Encode each split of a probe config once; returns ``{split: npz path}``.

    The encoder is built (and its checkpoint loaded) every time, to fingerprint it. An
    existing cache is reused when its stored key equals the current one: the config's
    encoder/dataset description plus :func:`encoder_fingerprint` (weights, input size,
    preprocessing). Otherwise, or with ``rebuild=True``, the split is re-encoded in place;
    a warning names the old and new weight fingerprints when only the weights changed.
    """
    for split in splits:
        bad = random_transforms(cfg[f'{split}_dataloader']['dataset'].get('pipeline'))
        if bad:
            raise ValueError(
                f'the {split} pipeline has random transforms {bad}: the feature cache stores '
                'one feature per image, which matches training on images only for a '
                'deterministic pipeline. Remove them, or train without --cache.')
    from mmengine.runner import set_random_seed
    from mmpretrain.registry import MODELS
    randomness = dict(cfg.get('randomness') or {})
    if randomness.get('seed') is not None:
        # seed as the Runner does before it builds the model: a random-weight encoder (toy
        # configs) then gets the same weights here as in a run on images
        set_random_seed(**randomness)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(copy.deepcopy(cfg.model))  # on the CPU until there is work
        fingerprint = encoder_fingerprint(model)
        paths, todo = {}, []
        for split in splits:
            path = osp.join(cache_dir, f'{split}.npz')
            paths[split] = path
            meta = _jsonable(dict(_cache_meta(cfg, split), encoder=fingerprint))
            if not rebuild and osp.isfile(path):
                stored = load_feature_cache(path)['meta']
                if stored == meta:
                    continue
                print_log(_stale_reason(path, stored, meta), logger='current',
                          level=logging.WARNING)
            todo.append((split, path, meta))
        if todo:
            model = model.to(device)
        for split, path, meta in todo:
            loader_cfg = copy.deepcopy(cfg[f'{split}_dataloader'])
            loader_cfg['sampler'] = dict(type='DefaultSampler', shuffle=False)
            loader_cfg['dataset'].setdefault('test_mode', split != 'train')
            loader = Runner.build_dataloader(loader_cfg)
            feats, labels, img_paths = extract_features(model, loader, amp)
            classes = loader.dataset.metainfo.get('classes') or []
            save_feature_cache(path, feats, labels, classes, img_paths, meta)
    return paths


def cached_probe_config(cfg: Config, cache_files: Dict[str, str],
                        feature_dim: Optional[int] = None) -> Config:
    """The head-only twin of an image probe config: same head, optimiser, schedule and
    sampler, but ``CachedFeatureBackbone`` and ``CachedFeatureDataset`` in place of the
    encoder and the images."""
    cfg = copy.deepcopy(cfg)
    if feature_dim is None:
        feature_dim = int(load_feature_cache(cache_files['train'])['features'].shape[1])
    cfg.model.backbone = ConfigDict(type='CachedFeatureBackbone', in_channels=feature_dim)
    cfg.model.neck = None
    # features are already normalised encoder outputs: no mean/std, no padding
    cfg.model.data_preprocessor = ConfigDict(type='ClsDataPreprocessor')
    for split, path in cache_files.items():
        key = f'{split}_dataloader'
        if cfg.get(key) is None:
            continue
        cfg[key].dataset = ConfigDict(type='CachedFeatureDataset', ann_file=path,
                                      test_mode=split != 'train')
        cfg[key].collate_fn = ConfigDict(type='default_collate')
    if 'test' not in cache_files and cfg.get('test_dataloader') is not None and \
            'val' in cache_files:
        cfg.test_dataloader.dataset = copy.deepcopy(cfg.val_dataloader.dataset)
        cfg.test_dataloader.collate_fn = ConfigDict(type='default_collate')
    return cfg
