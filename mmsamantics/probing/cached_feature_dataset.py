"""Dataset of pooled features written by the feature cache (one ``.npz`` per split).

File layout (:func:`~mmsamantics.probing.feature_cache.save_feature_cache`):
``features`` (N, C) float32, ``labels`` (N,) int64, ``classes`` (K,) str, ``img_paths``
(N,) str, ``meta`` a JSON string (encoder config, split, ...).
"""
import json
import os.path as osp
from typing import List, Optional, Sequence

import numpy as np
from mmpretrain.datasets import BaseDataset
from mmpretrain.registry import DATASETS

from ..utils.checkpoint import MissingResourceError


def load_feature_cache(path: str) -> dict:
    """Read a feature-cache ``.npz`` (clear error when missing or malformed)."""
    if not osp.isfile(path):
        raise MissingResourceError(
            f'feature cache {path!r} not found: write it with tools/analysis/linear_probe.py '
            '--cache (or mmsamantics.probing.build_feature_caches).')
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in ('features', 'labels', 'classes', 'img_paths', 'meta')
                   if k not in z.files]
        if missing:
            raise ValueError(f'{path!r} is not a probe feature cache (missing {missing})')
        out = {k: z[k] for k in z.files}
    out['meta'] = json.loads(str(out['meta']))
    if out['features'].ndim != 2 or len(out['features']) != len(out['labels']):
        raise ValueError(f'{path!r}: features {out["features"].shape} and labels '
                         f'{out["labels"].shape} do not match')
    return out


@DATASETS.register_module()
class CachedFeatureDataset(BaseDataset):
    """Pooled encoder features and their labels, in the order of the image dataset.

    Each sample packs to ``inputs`` (C,) float32 and a ``DataSample`` with ``gt_label``;
    use ``collate_fn=dict(type='default_collate')`` to get (B, C) batches.

    Args:
        ann_file: the ``.npz`` written by the feature cache.
        pipeline: default packs the feature (``PackInputs(input_key='feat')``).
    """

    def __init__(self,
                 ann_file: str,
                 pipeline: Optional[Sequence] = None,
                 test_mode: bool = False,
                 **kwargs) -> None:
        self._cache = load_feature_cache(ann_file)
        pipeline = pipeline if pipeline is not None else [
            dict(type='PackInputs', input_key='feat')]  # img_path goes to metainfo
        super().__init__(ann_file=ann_file, pipeline=pipeline, test_mode=test_mode,
                         metainfo=dict(classes=[str(c) for c in self._cache['classes']]),
                         **kwargs)

    def load_data_list(self) -> List[dict]:
        c = self._cache
        return [dict(feat=c['features'][i], gt_label=int(c['labels'][i]),
                     img_path=str(c['img_paths'][i])) for i in range(len(c['labels']))]

    @property
    def feature_dim(self) -> int:
        return int(self._cache['features'].shape[1])
