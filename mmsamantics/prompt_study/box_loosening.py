"""Box geometry of the box-prompt study: COCO boxes to xyxy, and "loose" boxes.

Shape shorthand: N boxes, (H, W) the image size in pixels.

The Sama blog ("Segment Anything: Is SAM all you need?") prompts SAM with "a loose bounding
box with 20% buffer to the box sidelength" and with the exact ground-truth box ("tight").
It does not say whether the 20 % is added to each side or split over both sides, so both
readings are available:

* ``mode='per_side'`` (default): every side moves outwards by ``fraction`` times the box's
  extent along that axis::

      x1' = x1 - f * w,   x2' = x2 + f * w,   y1' = y1 - f * h,   y2' = y2 + f * h

  so with f = 0.2 the loose box is 1.4 w x 1.4 h before clipping.
* ``mode='total'``: the side length grows by ``fraction`` in all, half on each side
  (1.2 w x 1.2 h for f = 0.2).

The result is clipped to the image, ``[0, W] x [0, H]`` in continuous pixel coordinates
(the convention of COCO boxes and of SAM's box prompts), so a box touching the border
only grows inwards.
"""
from typing import Sequence, Tuple

import numpy as np

LOOSEN_MODES = {'per_side': 1.0, 'total': 0.5}  # buffer per side, in units of f * side


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) COCO ``[x, y, w, h]`` boxes -> (N, 4) ``[x1, y1, x2, y2]`` float64."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


def loosen_boxes(boxes: np.ndarray, fraction: float, img_shape: Sequence[int],
                 mode: str = 'per_side') -> np.ndarray:
    """Loosen xyxy boxes by ``fraction`` of their side lengths, clipped to the image.

    Args:
        boxes: (N, 4) xyxy boxes in original-image pixels.
        fraction: the buffer, e.g. 0.2 for the blog's 20 %; 0 returns the boxes clipped.
        img_shape: (H, W) of the image.
        mode: ``'per_side'`` (each side moves out by ``fraction * side``) or ``'total'``
            (the side grows by ``fraction * side`` in all); see the module docstring.

    Returns:
        (N, 4) float64 loose boxes, inside ``[0, W] x [0, H]``.
    """
    if mode not in LOOSEN_MODES:
        raise ValueError(f'unknown loosening mode {mode!r}; choose one of {sorted(LOOSEN_MODES)}')
    if not np.isfinite(fraction) or fraction < 0:
        raise ValueError(f'the loosening fraction must be >= 0 (0.2 = 20 %), got {fraction}')
    h, w = int(img_shape[0]), int(img_shape[1])
    if h <= 0 or w <= 0:
        raise ValueError(f'image shape must be positive (H, W), got {tuple(img_shape)}')
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    if (b[:, 2:] < b[:, :2]).any():
        bad = np.where((b[:, 2:] < b[:, :2]).any(1))[0].tolist()
        raise ValueError(f'boxes {bad} have x2 < x1 or y2 < y1: pass xyxy boxes '
                         '(convert COCO xywh with xywh_to_xyxy)')
    size = b[:, 2:] - b[:, :2]  # (N, 2) w, h
    pad = fraction * LOOSEN_MODES[mode] * size
    out = np.concatenate([b[:, :2] - pad, b[:, 2:] + pad], axis=1)
    return clip_boxes(out, (h, w))


def clip_boxes(boxes: np.ndarray, img_shape: Tuple[int, int]) -> np.ndarray:
    """(N, 4) xyxy boxes clipped to ``[0, W] x [0, H]``."""
    h, w = img_shape[:2]
    out = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    out[:, 0::2] = out[:, 0::2].clip(0, w)
    out[:, 1::2] = out[:, 1::2].clip(0, h)
    return out
