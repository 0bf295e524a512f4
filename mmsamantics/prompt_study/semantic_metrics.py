"""Mask IoU of instances and confusion-matrix mIoU of semantic label maps.

Shape shorthand: N masks, (H, W) image size, K classes INCLUDING background (label 0).

Semantic mIoU follows mmseg's ``IoUMetric``: one confusion matrix is accumulated over the
whole dataset (not per image), pixels whose GT is ``ignore_index`` are left out, and a
class's IoU is ``TP / (TP + FP + FN)``. A class that is neither in the GT nor predicted
anywhere has no IoU (NaN) and is left out of the mean; a class that is predicted but never
in the GT gets IoU 0 (its false positives count). Background (0) is a class, as in VOC.
"""
from typing import Dict, List, Optional, Sequence

import numpy as np


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of pairs of binary masks.

    Args:
        pred: (N, H, W) or (H, W) bool masks.
        gt: masks of the same shape.

    Returns:
        (N,) float64 IoU (a scalar array for 2D inputs); two empty masks have IoU 1
        (perfect agreement), an empty union can only happen then.
    """
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise ValueError(f'mask shapes differ: prediction {pred.shape} vs GT {gt.shape}')
    inter = np.logical_and(pred, gt).sum(axis=(-2, -1)).astype(np.float64)
    union = np.logical_or(pred, gt).sum(axis=(-2, -1)).astype(np.float64)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, num_classes: int,
                     ignore_index: int = 255) -> np.ndarray:
    """(K, K) int64 confusion matrix, rows = GT class, columns = predicted class.

    Args:
        pred: (H, W) integer label map.
        gt: (H, W) integer label map; pixels equal to ``ignore_index`` are skipped.
        num_classes: K, background included.
        ignore_index: the GT "don't care" value (255 in VOC).
    """
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        raise ValueError(f'label map shapes differ: prediction {pred.shape} vs GT {gt.shape}; '
                         'pseudo-labels must have the size of their image')
    keep = gt != ignore_index
    g, p = gt[keep].astype(np.int64), pred[keep].astype(np.int64)
    for what, x in (('GT', g), ('prediction', p)):
        if x.size and (x.min() < 0 or x.max() >= num_classes):
            raise ValueError(f'{what} holds label {int(x.max() if x.max() >= num_classes else x.min())} '
                             f'outside 0..{num_classes - 1} (and not ignore_index '
                             f'{ignore_index}): wrong --num-classes or class list?')
    return np.bincount(g * num_classes + p, minlength=num_classes ** 2).reshape(
        num_classes, num_classes)


def iou_from_confusion(conf: np.ndarray) -> np.ndarray:
    """(K,) per-class IoU from a (K, K) confusion matrix; NaN where the union is 0."""
    conf = np.asarray(conf, np.float64)
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
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
        self.conf = np.zeros((len(class_names),) * 2, np.int64)
        self.num_images = 0

    def add(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one image's (H, W) predicted and GT label maps."""
        self.conf += confusion_matrix(pred, gt, len(self.class_names), self.ignore_index)
        self.num_images += 1

    def summary(self) -> Dict:
        """``miou`` (nan-mean over classes, background included), ``miou_fg`` (without
        background), ``pixel_acc`` and ``per_class`` rows {name, iou (None = absent),
        gt_pixels, pred_pixels}."""
        iou = iou_from_confusion(self.conf)
        total = self.conf.sum()
        per_class: List[Dict] = [
            dict(label=k, name=n, iou=None if np.isnan(iou[k]) else float(iou[k]),
                 gt_pixels=int(self.conf[k].sum()), pred_pixels=int(self.conf[:, k].sum()))
            for k, n in enumerate(self.class_names)]
        return dict(miou=_nanmean(iou), miou_fg=_nanmean(iou[1:]),
                    pixel_acc=float(np.trace(self.conf) / total) if total else None,
                    num_images=self.num_images, num_classes=len(self.class_names),
                    per_class=per_class)


def _nanmean(x: np.ndarray) -> Optional[float]:
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else None
