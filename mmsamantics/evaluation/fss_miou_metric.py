"""Few-shot segmentation metric: mIoU and FB-IoU over (target, class) episodes.

An episode is one target image queried with one class (its k references). The prediction is
the union of the detector's masks of that class, the ground truth the union of the target's
instances of that class (a semantic mask, crowd regions included, as COCO-20i does).
Following the HSNet / PANet protocol:

    IoU_c  = sum_episodes(c) |P & G| / sum_episodes(c) |P | G|      (summed, then divided)
    mIoU   = mean over the evaluated classes of IoU_c (a class whose summed union is empty,
             nothing predicted and nothing there, counts as 1)
    FB-IoU = (IoU_fg + IoU_bg) / 2, where IoU_fg / IoU_bg sum |P & G| and |P | G| of the
             foreground / background over ALL episodes

Besides the SAM masks (``mIoU``, ``FB-IoU``), when the detector returns heatmaps the same
numbers are computed for the prompter alone (``heatmap_mIoU``, ``heatmap_FB-IoU``): the
predicted heatmap >= ``heatmap_thr`` against the ground-truth fixation map
(``gt_heatmaps > 0.5``, the target's prompt blobs), on the prompter's grid. With
``class_splits`` the mIoU is also given per split (e.g. base / novel).
"""
import json
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from pycocotools.coco import COCO

from mmdet.registry import METRICS
from ..utils.checkpoint import MissingResourceError


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _episode(pred: np.ndarray, gt: np.ndarray) -> tuple:
    """(fg inter, fg union, bg inter, bg union) of two bool masks."""
    return (int((pred & gt).sum()), int((pred | gt).sum()),
            int((~pred & ~gt).sum()), int((~pred | ~gt).sum()))


@METRICS.register_module()
class FewShotSegMetric(BaseMetric):
    """Episode mIoU / FB-IoU of in-context segmentation (see the module docstring).

    Args:
        ann_file: COCO JSON of the evaluated images (ground-truth masks). None: only the
            heatmap scores are computed.
        score_thr: masks below this score are left out of the prediction.
        heatmap_thr: threshold of the predicted heatmaps (the peak threshold tau).
        class_splits / class_splits_file: ``{split: [class names]}`` for per-split mIoU.
    """

    default_prefix: Optional[str] = 'fss'

    def __init__(self, ann_file: Optional[str] = None, score_thr: float = 0.0,
                 heatmap_thr: float = 0.5,
                 class_splits: Optional[Dict[str, Sequence[str]]] = None,
                 class_splits_file: Optional[str] = None,
                 collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.coco = None
        if ann_file is not None:
            try:
                self.coco = COCO(ann_file)
            except FileNotFoundError as e:
                raise MissingResourceError(f'ann_file not found: {ann_file!r}') from e
        if class_splits is None and class_splits_file is not None:
            try:
                with open(class_splits_file) as f:
                    class_splits = json.load(f)
            except FileNotFoundError as e:
                raise MissingResourceError(
                    f'class_splits_file not found: {class_splits_file!r}') from e
        self.class_splits = dict(class_splits or {})
        self.score_thr = score_thr
        self.heatmap_thr = heatmap_thr
        self._cat_ids: Optional[List[int]] = None

    def _gt_mask(self, img_id: int, label: int, hw: tuple) -> np.ndarray:
        if self._cat_ids is None:  # label -> category id exactly as mmdet's CocoDataset
            self._cat_ids = self.coco.getCatIds(catNms=self.dataset_meta['classes'])
        anns = self.coco.loadAnns(self.coco.getAnnIds(imgIds=[img_id],
                                                      catIds=[self._cat_ids[label]]))
        gt = np.zeros(hw, bool)
        for a in anns:
            m = self.coco.annToMask(a).astype(bool)
            if m.shape != gt.shape:
                raise ValueError(f'image {img_id}: annotation mask {m.shape} vs predictions '
                                 f'{gt.shape}; evaluate with rescale=True (original size)')
            gt |= m
        return gt

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for ds in data_samples:
            if 'heatmap_labels' not in ds:
                raise KeyError('FewShotSegMetric needs the queried classes '
                               '(heatmap_labels): use it with the SAMIC detector')
            labels = _np(ds['heatmap_labels']).tolist()
            res = []
            if self.coco is not None:
                pred = ds['pred_instances']
                masks = _np(pred['masks']).astype(bool)
                keep = _np(pred['scores']) >= self.score_thr
                plabels = _np(pred['labels'])
                hw = tuple(ds['ori_shape'][:2])
                for lb in labels:
                    sel = keep & (plabels == lb)
                    p = masks[sel].any(0) if sel.any() else np.zeros(hw, bool)
                    res.append(('mask', lb) + _episode(p, self._gt_mask(ds['img_id'], lb, hw)))
            if 'gt_heatmaps' in ds and 'pred_heatmaps' in ds:
                ref_labels = _np(ds['ref_instances']['labels']).tolist()
                gt_maps, maps = _np(ds['gt_heatmaps']), _np(ds['pred_heatmaps'])
                if gt_maps.shape[1:] != maps.shape[1:]:
                    raise ValueError(f'target heatmaps are {gt_maps.shape[1:]} but the model '
                                     f'predicts {maps.shape[1:]}: set '
                                     'GenerateSaliencyHeatmaps(size=...) to the prompter '
                                     'input_size in the test pipeline')
                for q, lb in enumerate(labels):
                    g = gt_maps[ref_labels.index(lb)] > 0.5
                    res.append(('heatmap', lb) + _episode(maps[q] >= self.heatmap_thr, g))
            self.results.append(res)

    def compute_metrics(self, results: list) -> Dict[str, float]:
        out: Dict[str, float] = {}
        classes = list(self.dataset_meta['classes'])
        for src, key in (('mask', ''), ('heatmap', 'heatmap_')):
            eps = [e[1:] for r in results for e in r if e[0] == src]
            if not eps:
                continue
            per_cls = defaultdict(lambda: np.zeros(2))
            fb = np.zeros(4)
            for lb, fi, fu, bi, bu in eps:
                per_cls[lb] += (fi, fu)
                fb += (fi, fu, bi, bu)
            iou = {lb: (i / u if u > 0 else 1.0) for lb, (i, u) in per_cls.items()}
            out[f'{key}mIoU'] = float(np.mean(list(iou.values())))
            out[f'{key}FB-IoU'] = float((fb[0] / max(fb[1], 1) + fb[2] / max(fb[3], 1)) / 2)
            for split, names in self.class_splits.items():
                vals = [iou[classes.index(n)] for n in names
                        if n in classes and classes.index(n) in iou]
                if vals:
                    out[f'{split}_{key}mIoU'] = float(np.mean(vals))
            if src == 'mask':
                print_log(f'episodes: {len(eps)}, classes: {len(iou)}', logger='current')
        if not out:
            raise ValueError('FewShotSegMetric got no episode: give ann_file (mask IoU) or '
                             'target heatmaps (GenerateSaliencyHeatmaps with_gt=True) in the '
                             'test pipeline (heatmap IoU)')
        return out
