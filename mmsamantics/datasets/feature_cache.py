"""On-disk layout of the frozen-SAM cache.

::

    CACHE_DIR/
      meta.json                 signature, channels, dtype, input size, what is stored
      feats/<rel>.npz           per target image: ``feats`` (C_tot, h, w) = the backbone's
                                level outputs (and the SAM embedding when stored) concatenated
                                on channels, ``img_shape`` (Hi, Wi), ``ori_shape`` (H0, W0)
      tokens/<rel>.npz          per reference image: ``keys`` (n,) reference keys and
                                ``tokens`` (n, T, D) SAM mask tokens of its reference boxes
      shards/shard_<i>_of_<n>.json  written when shard i finishes (counts, seconds)

``<rel>`` is the image's folder and stem (``train2017/000000000009``): stable whatever
``data_root`` is. Files are written to a temporary name and renamed, so an interrupted run
leaves no half-written file and a re-run skips what exists (resumable).

Sizes (fp16): ViT-B at 1024 px stores 4 x 768 x 64 x 64 x 2 B = 25.2 MB per image (+2.1 MB
with the 256-channel embedding), i.e. 2.98 TB for COCO train2017's 118,287 images; tokens are
4 x 256 x 2 B = 2 KB per reference instance. The tiny toy preset stores 98 KB per image.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..utils.checkpoint import MissingResourceError

CACHE_VERSION = 1


def cache_relpath(img_path: str) -> str:
    """``data/coco/train2017/000000000009.jpg`` -> ``train2017/000000000009``."""
    parent = osp.basename(osp.dirname(osp.normpath(img_path)))
    stem = osp.splitext(osp.basename(img_path))[0]
    return osp.join(parent, stem) if parent else stem


def _atomic_savez(path: str, **arrays) -> None:
    os.makedirs(osp.dirname(path), exist_ok=True)
    tmp = f'{path}.{os.getpid()}.tmp.npz'
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


class FeatureCache:
    """Reader/writer of one cache directory.

    Args:
        root: the cache directory.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self._meta: Optional[dict] = None

    # ------------------------------------------------------------------ meta
    @property
    def meta_path(self) -> str:
        return osp.join(self.root, 'meta.json')

    @property
    def meta(self) -> dict:
        """The cache's ``meta.json`` (clear error when the cache does not exist)."""
        if self._meta is None:
            if not osp.isfile(self.meta_path):
                raise MissingResourceError(
                    f'no SAM feature cache at {self.root!r} (meta.json missing). Build it '
                    'with `python tools/misc/cache_embeddings.py CONFIG --out '
                    f'{self.root}` (see README, "Frozen-embedding cache").')
            with open(self.meta_path) as f:
                self._meta = json.load(f)
            if self._meta.get('version') != CACHE_VERSION:
                raise ValueError(f'{self.meta_path} has cache version '
                                 f'{self._meta.get("version")}, this mmsamantics reads '
                                 f'{CACHE_VERSION}: rebuild the cache')
        return self._meta

    def init_meta(self, meta: dict, overwrite: bool = False) -> None:
        """Create ``meta.json``, or check that an existing cache was made the same way."""
        meta = dict(meta, version=CACHE_VERSION)
        if osp.isfile(self.meta_path) and not overwrite:
            old = self.meta
            diff = {k for k in ('signature', 'channels', 'dtype', 'with_embedding', 'img_size')
                    if old.get(k) != meta.get(k)}
            if diff:
                raise ValueError(
                    f'{self.root} holds a cache made differently ({sorted(diff)} differ: '
                    f'{ {k: old.get(k) for k in diff} } vs { {k: meta.get(k) for k in diff} }). '
                    'Use another --out directory, or --overwrite to start it again.')
            return
        os.makedirs(self.root, exist_ok=True)
        tmp = f'{self.meta_path}.{os.getpid()}.tmp'
        with open(tmp, 'w') as f:
            json.dump(meta, f, indent=1)
        os.replace(tmp, self.meta_path)
        self._meta = meta

    # ------------------------------------------------------------------ paths
    def feats_path(self, img_path: str) -> str:
        return osp.join(self.root, 'feats', cache_relpath(img_path) + '.npz')

    def tokens_path(self, img_path: str) -> str:
        return osp.join(self.root, 'tokens', cache_relpath(img_path) + '.npz')

    # ------------------------------------------------------------------ write
    def write_feats(self, img_path: str, feats: np.ndarray, img_shape: Sequence[int],
                    ori_shape: Sequence[int]) -> None:
        """Store (C_tot, h, w) features of one target image."""
        _atomic_savez(self.feats_path(img_path), feats=feats,
                      img_shape=np.asarray(img_shape[:2], np.int64),
                      ori_shape=np.asarray(ori_shape[:2], np.int64))

    def write_tokens(self, img_path: str, keys: List[str], tokens: np.ndarray) -> None:
        """Store (n, T, D) reference tokens of the n reference boxes of one image."""
        _atomic_savez(self.tokens_path(img_path), keys=np.asarray(keys, dtype=str),
                      tokens=tokens)

    # ------------------------------------------------------------------ read
    def read_feats(self, img_path: str) -> Dict[str, np.ndarray]:
        """``feats`` (C_tot, h, w), ``img_shape`` (2,), ``ori_shape`` (2,) of one image."""
        path = self.feats_path(img_path)
        if not osp.isfile(path):
            raise MissingResourceError(
                f'{img_path!r} is not in the SAM feature cache {self.root!r} (no {path}). '
                'The cache was built for another dataset or is incomplete: run '
                'tools/misc/cache_embeddings.py again with the same --out (it resumes).')
        with np.load(path) as z:
            return {k: z[k] for k in ('feats', 'img_shape', 'ori_shape')}

    def read_tokens(self, img_path: str) -> Dict[str, np.ndarray]:
        """Reference key -> (T, D) tokens for the references of one image."""
        path = self.tokens_path(img_path)
        if not osp.isfile(path):
            raise MissingResourceError(
                f'reference image {img_path!r} has no tokens in the cache {self.root!r} '
                f'(no {path}): rebuild the cache with the same reference settings '
                '(tools/misc/cache_embeddings.py resumes).')
        with np.load(path) as z:
            return {str(k): t for k, t in zip(z['keys'], z['tokens'])}
