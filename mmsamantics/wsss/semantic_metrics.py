"""Confusion-matrix mIoU of semantic label maps (WSSS pseudo-labels vs GT).

Shape shorthand: (H, W) image size, K classes INCLUDING background (label 0).

Semantic mIoU follows mmseg's ``IoUMetric``: one confusion matrix is accumulated over the
whole dataset (not per image), pixels whose GT is ``ignore_index`` are left out, and a
class's IoU is ``TP / (TP + FP + FN)``. A class that is neither in the GT nor predicted
anywhere has no IoU (NaN) and is left out of the mean; a class that is predicted but never
in the GT gets IoU 0 (its false positives count). Background (0) is a class, as in VOC.
A pseudo-label pixel left as ``ignore_index`` (255) counts as a miss of its GT class.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, num_classes: int,
                     ignore_index: int = 255) -> np.ndarray:
    """(K, K + 1) int64 confusion matrix, rows = GT class, columns = predicted class.

    The last column counts GT pixels the prediction left unlabelled (``ignore_index`` in a
    pseudo-label, e.g. conflicting instances): they are misses of the GT class, not false
    positives of any class.

    Args:
        pred: (H, W) integer label map.
        gt: (H, W) integer label map; pixels equal to ``ignore_index`` are skipped.
        num_classes: K, background included.
        ignore_index: the "don't care" value (255 in VOC).
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f'label map shapes differ: prediction {pred.shape} vs GT {gt.shape}; '
                         'pseudo-labels must have the size of their image')
    keep = gt != ignore_index
    g, p = gt[keep].astype(np.int64), pred[keep].astype(np.int64)
    p = np.where(p == ignore_index, num_classes, p)
    for what, x, hi in (('GT', g, num_classes), ('prediction', p, num_classes + 1)):
        bad = x[(x < 0) | (x >= hi)]
        if bad.size:
            raise ValueError(f'{what} holds label {int(bad[0])} outside 0..{num_classes - 1} '
                             f'(and not ignore_index {ignore_index}): wrong class list?')
    k1 = num_classes + 1
    return np.bincount(g * k1 + p, minlength=num_classes * k1).reshape(num_classes, k1)


def iou_from_confusion(conf: np.ndarray) -> np.ndarray:
    """(K,) per-class IoU from a (K, K) or (K, K + 1) confusion matrix; NaN where the union
    is 0. IoU = TP / (GT pixels + predicted pixels - TP)."""
    conf = np.asarray(conf, np.float64)
    k = conf.shape[0]
    tp = np.diag(conf[:, :k])
    union = conf.sum(1) + conf[:, :k].sum(0) - tp
    with np.errstate(invalid='ignore', divide='ignore'):
        return np.where(union > 0, tp / union, np.nan)


class SemanticIoU:
    """Accumulates a confusion matrix over images; ``summary()`` gives mIoU and per class.

    Args:
        class_names: K names, index = label value (``class_names[0]`` is background).
        ignore_index: GT value left out of the counts.
    """

    def __init__(self, class_names: Sequence[str], ignore_index: int = 255) -> None:
        if len(class_names) < 2:
            raise ValueError('need at least background and one class')
        self.class_names = list(class_names)
        self.ignore_index = ignore_index
        k = len(class_names)
        self.conf = np.zeros((k, k + 1), np.int64)  # last column: left unlabelled (255)
        self.num_images = 0

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one image's (H, W) predicted and GT label maps."""
        self.conf += confusion_matrix(pred, gt, len(self.class_names), self.ignore_index)
        self.num_images += 1

    def summary(self) -> Dict:
        """``miou`` (nan-mean over classes, background included), ``miou_fg`` (without
        background), ``pixel_acc``, ``unlabelled_pixels`` (GT pixels predicted 255) and
        ``per_class`` rows {name, iou (None = absent), gt_pixels, pred_pixels}."""
        iou = iou_from_confusion(self.conf)
        total = self.conf.sum()
        k = len(self.class_names)
        per_class: List[Dict] = [
            dict(label=k, name=n, iou=None if np.isnan(iou[k]) else float(iou[k]),
                 gt_pixels=int(self.conf[k].sum()), pred_pixels=int(self.conf[:, k].sum()))
            for k, n in enumerate(self.class_names)]
        return dict(miou=_nanmean(iou), miou_fg=_nanmean(iou[1:]),
                    pixel_acc=float(np.trace(self.conf[:, :k]) / total) if total else None,
                    unlabelled_pixels=int(self.conf[:, k].sum()),
                    num_images=self.num_images, num_classes=len(self.class_names),
                    per_class=per_class)


def _nanmean(x: np.ndarray) -> Optional[float]:
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else None
