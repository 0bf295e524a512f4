"""COCO box/mask AP over all classes and over class splits (e.g. COCO-NOVEL base / novel)."""
import json
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

from mmdet.evaluation import CocoMetric
from mmdet.registry import METRICS


@METRICS.register_module()
class InContextCocoMetric(CocoMetric):
    """mmdet's ``CocoMetric``, evaluated once for all classes and once per class split.

    Keys: the usual ``bbox_mAP``, ``segm_mAP_50``, ... for all classes, then
    ``{split}_bbox_mAP`` ... for each split (e.g. ``base_bbox_mAP_50``, ``novel_segm_mAP``).

    Args:
        class_splits: ``{split name: [class names]}``; or
        class_splits_file: a JSON file with that mapping (the toy world's splits.json).
        **kwargs: :class:`mmdet.evaluation.CocoMetric` arguments.
    """

    def __init__(self,
                 class_splits: Optional[Dict[str, Sequence[str]]] = None,
                 class_splits_file: Optional[str] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if class_splits is None and class_splits_file is not None:
            try:
                with open(class_splits_file) as f:
                    class_splits = json.load(f)
            except FileNotFoundError as e:
                raise FileNotFoundError(f'class_splits_file not found: {class_splits_file!r}') from e
        self.class_splits = dict(class_splits or {})
        self._label_cat_ids: Optional[List[int]] = None

    def results2json(self, results: Sequence[dict], outfile_prefix: str) -> dict:
        # Labels always map through ALL classes, whatever subset is being evaluated.
        subset = self.cat_ids
        if self._label_cat_ids is None:
            self._label_cat_ids = self._coco_api.get_cat_ids(
                cat_names=self.dataset_meta['classes'])
        self.cat_ids = self._label_cat_ids
        try:
            return super().results2json(results, outfile_prefix)
        finally:
            self.cat_ids = subset

    def compute_metrics(self, results: list) -> Dict[str, float]:
        if 'segm' in self.metrics and results and any('masks' not in r for _, r in results):
            raise ValueError("the 'segm' metric needs masks, but the model predicted boxes only "
                             '(e.g. model.with_mask=False): evaluate boxes alone with '
                             "--cfg-options test_evaluator.metric=bbox, or predict masks")
        out = OrderedDict(super().compute_metrics(results))
        all_ids = self.cat_ids
        classes = list(self.dataset_meta['classes'])
        try:
            for split, names in self.class_splits.items():
                names = [n for n in names if n in classes]
                if not names:
                    continue
                self.cat_ids = self._coco_api.get_cat_ids(cat_names=names)
                for k, v in super().compute_metrics(results).items():
                    out[f'{split}_{k}'] = v
        finally:
            self.cat_ids = all_ids
        return out
