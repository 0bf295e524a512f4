"""Compute frozen-SAM outputs once into a feature cache: target features and reference tokens.

One SAM pass per image serves both: its level features are stored for training/testing on
it as a target, and the same embedding gives the tokens of every reference box it holds.
(Reference banks are made by the detector's own ``encode_references``, see
:mod:`mmsamantics.apis.bank_builder`.)
Images are read and resized exactly as the pipelines do (``LoadImageChecked`` +
``Resize(keep_ratio=True)`` for targets, :class:`LoadInContextReferences` for references),
then normalised and padded by the model's own data preprocessor.
"""
import json
import os
import os.path as osp
import time
from collections import OrderedDict
from typing import Callable, List, Optional

import numpy as np
import torch

from ..utils.images import load_resized, preprocess_images
from ..datasets.feature_cache import FeatureCache


def cache_items(dataset, with_references: bool = True) -> List[dict]:
    """What to compute for an :class:`InContextCocoDataset`: one item per image.

    Each item: ``img_path``, ``target`` (store its features) and ``refs`` (list of
    ``{key, bbox}`` in original pixels whose tokens to store). Training datasets need the
    tokens of their whole reference pool; evaluation datasets only those of their fixed
    reference set.
    """
    items: 'OrderedDict[str, dict]' = OrderedDict()
    for i in range(len(dataset)):
        p = dataset.get_data_info(i)['img_path']
        items.setdefault(p, dict(img_path=p, target=True, refs=[]))
    if with_references:
        pool = dataset.ref_pool if dataset.mode == 'train' else dataset.reference_set
        for refs in pool.values():
            for r in refs:
                it = items.setdefault(r['img_path'],
                                      dict(img_path=r['img_path'], target=False, refs=[]))
                if all(q['key'] != r['key'] for q in it['refs']):
                    it['refs'].append(dict(key=r['key'], bbox=r['bbox']))
    return sorted(items.values(), key=lambda it: it['img_path'])


@torch.no_grad()
def build_feature_cache(model, items: List[dict], cache: FeatureCache, *,
                        shard_id: int = 0, num_shards: int = 1, batch_size: int = 4,
                        dtype: str = 'float16', with_embedding: bool = False,
                        progress: Optional[Callable[[int, int], None]] = None) -> dict:
    """Write the features/tokens of shard ``shard_id`` of ``items`` into ``cache``.

    Items whose files exist are skipped (resume). Returns counts and seconds.
    """
    model.eval()
    np_dtype = np.dtype(dtype)
    sig = model.cache_signature
    chans = list(model.backbone.out_channels)
    size = model.backbone.img_size
    dec = model.mask_head.decoder
    if osp.isfile(cache.meta_path):
        stride = cache.meta['stride']
    else:  # one pass on a blank input tells the levels' resolution
        lv = model.backbone(torch.zeros(1, 3, size, size,
                                        device=model.data_preprocessor.device))[:-1]
        if len({tuple(f.shape[-2:]) for f in lv}) != 1:
            raise ValueError('the feature cache stores levels concatenated on channels: it '
                             'needs a backbone whose levels share one resolution (SAM ViT)')
        stride = size // int(lv[0].shape[-1])
    cache.init_meta(dict(
        signature=sig, img_size=size, stride=stride,
        channels=chans[:-1] + (chans[-1:] if with_embedding else []),
        with_embedding=with_embedding, dtype=dtype, num_tokens=model.num_reference_tokens,
        token_dim=dec.embed_dim, backbone=type(model.backbone).__name__))
    mine = items[shard_id::num_shards]
    todo = [it for it in mine if (it['target'] and not osp.isfile(cache.feats_path(it['img_path'])))
            or (it['refs'] and not osp.isfile(cache.tokens_path(it['img_path'])))]
    t0, done = time.perf_counter(), 0
    for s in range(0, len(todo), batch_size):
        batch = todo[s:s + batch_size]
        loaded = [load_resized(it['img_path'], size) for it in batch]
        x = preprocess_images(model.data_preprocessor, [im for im, _, _ in loaded])
        *levels, emb = model.backbone(x)
        parts = levels + ([emb] if with_embedding else [])
        if with_embedding and isinstance(emb, (tuple, list)):
            raise ValueError('--with-embedding stores one embedding tensor; this backbone '
                             'returns several (SAM 2, HQ-SAM): cache levels only')
        feats = torch.cat(parts, dim=1).cpu().numpy().astype(np_dtype)
        for i, (it, (im, scale, ori)) in enumerate(zip(batch, loaded)):
            if it['target']:
                cache.write_feats(it['img_path'], feats[i], im.shape[:2], ori)
            if it['refs']:
                boxes = torch.as_tensor(np.asarray([r['bbox'] for r in it['refs']],
                                                   np.float32) * scale, device=x.device)
                tok = model.reference_tokens_from((*levels, emb), boxes, [i] * len(boxes))
                tok = tok.cpu().numpy().astype(np_dtype)
                cache.write_tokens(it['img_path'], [r['key'] for r in it['refs']], tok)
        done += len(batch)
        if progress is not None:
            progress(done, len(todo))
    stats = dict(shard=shard_id, num_shards=num_shards, items=len(mine),
                 computed=len(todo), skipped=len(mine) - len(todo),
                 seconds=round(time.perf_counter() - t0, 2))
    os.makedirs(osp.join(cache.root, 'shards'), exist_ok=True)
    with open(osp.join(cache.root, 'shards', f'shard_{shard_id}_of_{num_shards}.json'),
              'w') as f:
        json.dump(stats, f)
    return stats
