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

Samples of the few-shot episode datasets (:class:`PascalFiveIDataset`,
:class:`CocoTwentyIDataset`, :class:`FSS1000Dataset`) carry their own ground truth
(``fss_episode``: the query's class mask and its ignore mask, e.g. PASCAL's 255 boundary
pixels); ignored pixels count in no intersection and no union, foreground or background,
as in HSNet's evaluation. mIoU is then the mean over the dataset's classes (the fold's),
each IoU summed over that class's episodes.

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
from ..datasets.fss_episodes import EPISODE_KEY
from ..utils.rle import decode_mask
from ..utils.checkpoint import MissingResourceError


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _episode(pred: np.ndarray, gt: np.ndarray, ignore: Optional[np.ndarray] = None
             ) -> tuple:
    """(fg inter, fg union, bg inter, bg union) of two bool masks, without ``ignore``."""
    valid = np.ones_like(gt) if ignore is None else ~ignore
    return (int((pred & gt & valid).sum()), int(((pred | gt) & valid).sum()),
            int((~pred & ~gt & valid).sum()), int(((~pred | ~gt) & valid).sum()))


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

    def _prediction(self, ds: dict, label: int, hw: tuple) -> np.ndarray:
        """(H0, W0) bool union of the predicted masks of ``label`` above ``score_thr``."""
        pred = ds['pred_instances']
        sel = (_np(pred['scores']) >= self.score_thr) & (_np(pred['labels']) == label)
        return (_np(pred['masks'])[sel].astype(bool).any(0) if sel.any()
                else np.zeros(hw, bool))

    def _episode_results(self, ds: dict, labels: List[int]) -> list:
        """The mask episode of a few-shot episode sample, against its own ground truth."""
        ep = ds[EPISODE_KEY]
        if labels != [ep['label']]:
            raise ValueError(f'episode of class {ep["label"]} but the model answered for '
                             f'classes {labels}: each episode sample queries one class')
        gt, ignore = decode_mask(ep['gt']), decode_mask(ep['ignore'])
        hw = tuple(ds['ori_shape'][:2])
        if gt.shape != hw:
            raise ValueError(f'episode ground truth {gt.shape} vs predictions {hw}; '
                             'evaluate with rescale=True (original size)')
        return [('mask', ep['label']) + _episode(self._prediction(ds, ep['label'], hw), gt,
                                                 ignore)]

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        for ds in data_samples:
            if 'heatmap_labels' not in ds:
                raise KeyError('FewShotSegMetric needs the queried classes '
                               '(heatmap_labels): use it with the SAMIC detector')
            labels = _np(ds['heatmap_labels']).tolist()
            res = []
            if EPISODE_KEY in ds:
                res += self._episode_results(ds, labels)
            elif self.coco is not None:
                hw = tuple(ds['ori_shape'][:2])
                res += [('mask', lb) + _episode(self._prediction(ds, lb, hw),
                                                self._gt_mask(ds['img_id'], lb, hw))
                        for lb in labels]
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

    @staticmethod
    def _log_classes(num_episodes: int, iou: Dict[int, float], classes: List[str]) -> None:
        """Episode and class counts, each class's IoU, and the classes never queried (a
        short episode list can miss some: they are not in the mean)."""
        per = ', '.join(f'{classes[lb]}: {v:.3f}' for lb, v in sorted(iou.items()))
        print_log(f'episodes: {num_episodes}, classes: {len(iou)} (IoU {per})',
                  logger='current')
        missing = [c for lb, c in enumerate(classes) if lb not in iou]
        if missing and len(classes) <= 100:
            print_log(f'classes without any episode (not in the mIoU): {missing}',
                      logger='current', level=30)

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
                self._log_classes(len(eps), iou, classes)
        if not out:
            raise ValueError('FewShotSegMetric got no episode: give ann_file (mask IoU) or '
                             'target heatmaps (GenerateSaliencyHeatmaps with_gt=True) in the '
                             'test pipeline (heatmap IoU)')
        return out
