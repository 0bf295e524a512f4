"""Pipeline steps that read frozen-SAM outputs from a cache instead of images.

A cached training pipeline replaces ``LoadImageChecked + Resize`` by
:class:`LoadCachedSAMFeatures`, ``RandomFlip`` by :class:`RandomFlipCachedFeatures` and
``LoadInContextReferences`` by :class:`LoadCachedReferenceTokens`::

    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='LoadCachedSAMFeatures', cache_dir=cache_dir),
    dict(type='RandomFlipCachedFeatures', prob=0.5),
    dict(type='LoadCachedReferenceTokens', cache_dir=cache_dir),
    dict(type='PackInContextDetInputs'),

No image is decoded and SAM never runs: the detector gets the features as its inputs.
"""
from collections import OrderedDict
from typing import Dict

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet.datasets.transforms import RandomFlip
from mmdet.registry import TRANSFORMS
from ..feature_cache import FeatureCache


def _cache_metainfo(cache: FeatureCache) -> dict:
    m = cache.meta
    return dict(feat_cache_signature=m['signature'], feat_cache_input_size=m['img_size'],
                feat_cache_stride=m['stride'])


@TRANSFORMS.register_module()
class LoadCachedSAMFeatures(BaseTransform):
    """Load a target's cached SAM features and resize its boxes as ``Resize`` would.

    Equivalent to ``LoadImageChecked`` + ``Resize(scale=(S, S), keep_ratio=True)`` followed by
    SAM: the cache stores the features of exactly that resized, padded image. Place it after
    ``LoadAnnotations`` (boxes are rescaled here and clipped to the resized image).

    Added keys: ``feats`` (C_tot, h, w) float16/32 array, ``img_shape``, ``ori_shape``,
    ``scale_factor`` (w_scale, h_scale), ``homography_matrix``, and the cache's signature,
    input size and stride (checked by the detector against its own SAM).

    Args:
        cache_dir: directory written by ``tools/misc/cache_embeddings.py``.
        clip_object_border: clip boxes to the image, as ``Resize`` does by default.
    """

    def __init__(self, cache_dir: str, clip_object_border: bool = True) -> None:
        self.cache = FeatureCache(cache_dir)
        self.clip_object_border = clip_object_border

    def transform(self, results: dict) -> dict:
        z = self.cache.read_feats(results['img_path'])
        img_shape = tuple(int(v) for v in z['img_shape'])
        ori_shape = tuple(int(v) for v in z['ori_shape'])
        results['feats'] = z['feats']
        results['img_shape'] = img_shape
        results['ori_shape'] = ori_shape
        # as mmdet's Resize: (w_scale, h_scale) from the rounded resized size
        w_scale, h_scale = img_shape[1] / ori_shape[1], img_shape[0] / ori_shape[0]
        results['scale_factor'] = (w_scale, h_scale)
        hm = np.array([[w_scale, 0, 0], [0, h_scale, 0], [0, 0, 1]], dtype=np.float32)
        prev = results.get('homography_matrix')
        results['homography_matrix'] = hm if prev is None else hm @ prev
        if results.get('gt_bboxes') is not None:
            results['gt_bboxes'].rescale_(results['scale_factor'])
            if self.clip_object_border:
                results['gt_bboxes'].clip_(img_shape)
        results.update(_cache_metainfo(self.cache))
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(cache_dir={self.cache.root!r})'


@TRANSFORMS.register_module()
class RandomFlipCachedFeatures(RandomFlip):
    """Horizontal ``RandomFlip`` of the boxes AND the cached feature map.

    The image would be flipped before SAM; here SAM's features are flipped instead (only the
    ``ceil(Wi / stride)`` columns of the valid region, so the padding stays right). SAM's ViT
    is not exactly flip-equivariant (windows, positional embeddings, a partially padded last
    column), so flipped features approximate the features of the flipped image: a documented,
    small difference to the uncached pipeline. Use ``prob=0`` for exact equivalence.
    """

    def __init__(self, prob: float = 0.5, direction: str = 'horizontal') -> None:
        if direction != 'horizontal':
            raise ValueError('cached features support horizontal flips only')
        super().__init__(prob=prob, direction=direction)

    def _flip(self, results: dict) -> None:
        h, w = results['img_shape'][:2]
        stride = results['feat_cache_stride']
        wv = -(-w // stride)  # valid feature columns
        feats = results['feats']
        flipped = feats.copy()
        flipped[..., :wv] = feats[..., :wv][..., ::-1]
        results['feats'] = flipped
        if results.get('gt_bboxes') is not None:
            results['gt_bboxes'].flip_((h, w), 'horizontal')
        if results.get('gt_masks') is not None:
            results['gt_masks'] = results['gt_masks'].flip('horizontal')
        hm = np.array([[-1, 0, w], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
        prev = results.get('homography_matrix')
        results['homography_matrix'] = hm if prev is None else hm @ prev


@TRANSFORMS.register_module()
class LoadCachedReferenceTokens(BaseTransform):
    """Look up the SAM tokens of ``results['references']`` in the cache (no image is read).

    Added keys: ``ref_tokens`` (R, T, D), ``ref_labels`` (R,), ``ref_keys`` (R,),
    ``ref_bboxes`` (R, 4) (original pixels; informative only), ``ref_imgs`` = [] and
    ``ref_tokens_signature`` (the cache's). Independent of the target: with
    :class:`LoadCachedSAMFeatures` or with images (``LoadImageChecked`` + ``Resize``), where
    a training step then runs SAM on the targets only.

    Args:
        cache_dir: directory written by ``tools/misc/cache_embeddings.py``.
        memory_items: reference images whose token files are kept in memory per worker.
    """

    def __init__(self, cache_dir: str, memory_items: int = 4096) -> None:
        self.cache = FeatureCache(cache_dir)
        self.memory_items = memory_items
        self._mem: 'OrderedDict[str, Dict[str, np.ndarray]]' = OrderedDict()

    def _tokens_of(self, img_path: str) -> Dict[str, np.ndarray]:
        if img_path in self._mem:
            self._mem.move_to_end(img_path)
            return self._mem[img_path]
        toks = self.cache.read_tokens(img_path)
        self._mem[img_path] = toks
        while len(self._mem) > self.memory_items:
            self._mem.popitem(last=False)
        return toks

    def transform(self, results: dict) -> dict:
        refs = results.get('references', [])
        tokens = []
        for r in refs:
            toks = self._tokens_of(r['img_path'])
            if r['key'] not in toks:
                raise KeyError(f'reference {r["key"]} of {r["img_path"]!r} is not in the cache '
                               f'{self.cache.root!r}: it was built with other reference '
                               'settings (ref_min_area, reference set); rebuild it.')
            tokens.append(toks[r['key']])
        m = self.cache.meta
        shape = (0, m['num_tokens'], m['token_dim'])
        results['ref_tokens'] = (np.stack(tokens) if tokens
                                 else np.zeros(shape, np.float32)).astype(np.float32)
        results['ref_labels'] = np.asarray([r['label'] for r in refs], np.int64)
        results['ref_keys'] = [r['key'] for r in refs]
        results['ref_bboxes'] = np.asarray([r['bbox'] for r in refs],
                                           np.float32).reshape(-1, 4)
        results['ref_imgs'] = []
        # its own key: the target may be an image (only cached features set feat_cache_*)
        results['ref_tokens_signature'] = m['signature']
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(cache_dir={self.cache.root!r})'
