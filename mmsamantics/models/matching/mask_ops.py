"""Mask-level operations for proposal de-duplication: pairwise IoU, greedy mask NMS, boxes.

Shape shorthand: N masks of H x W.
"""
from typing import Optional

import numpy as np
import torch
from segment_anything.utils.amg import batched_mask_to_box
from torch import Tensor


def mask_iou(masks_a: Tensor, masks_b: Tensor) -> Tensor:
    """Pairwise IoU of two sets of binary masks, with one matrix product.

    Args:
        masks_a: (N, H, W) bool. masks_b: (M, H, W) bool.

    Returns:
        (N, M) float IoU (0 where both masks are empty).
    """
    a = masks_a.flatten(1).float()
    b = masks_b.flatten(1).float()
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None] - inter
    return inter / union.clamp(min=1)


def mask_nms(masks: Tensor, scores: Tensor, iou_thr: float,
             labels: Optional[Tensor] = None) -> Tensor:
    """Greedy non-maximum suppression on masks (class-wise when ``labels`` are given).

    A mask is dropped when its IoU with a higher-scoring kept mask (of the same label)
    exceeds ``iou_thr``.

    Args:
        masks: (N, H, W) bool. scores: (N,). iou_thr: IoU above which a mask is a duplicate.
        labels: optional (N,) class of each mask; masks of different classes never suppress
            each other.

    Returns:
        (K,) indices of the kept masks, by decreasing score.
    """
    if len(masks) == 0:
        return torch.zeros(0, dtype=torch.long, device=masks.device)
    order = scores.argsort(descending=True)
    iou = mask_iou(masks[order], masks[order])
    if labels is not None:
        lab = labels[order]
        iou = iou * (lab[:, None] == lab[None]).float()
    # row i suppresses j > i; the iou matrix is computed once on the masks' device, the
    # greedy pass runs on one host copy of it (a per-row ``if keep[i]`` on a GPU tensor
    # would wait for the device N times); O(N^2) boolean work, cheap next to the products
    dup = (iou > iou_thr).triu(diagonal=1).cpu().numpy()
    keep = np.ones(len(order), dtype=bool)
    for i in range(len(order)):
        if keep[i]:
            keep &= ~dup[i]
    return order[torch.from_numpy(keep).to(order.device)]


def masks_to_boxes(masks: Tensor) -> Tensor:
    """(N, H, W) bool -> (N, 4) float xyxy boxes in pixel-edge coordinates.

    The right/bottom edges are exclusive (a one-pixel mask at (x, y) gives
    (x, y, x + 1, y + 1)), like COCO's box of a mask; an empty mask gives zeros.
    """
    boxes = batched_mask_to_box(masks).float()
    nonempty = masks.flatten(1).any(1)
    boxes[nonempty, 2:] += 1
    return boxes
