"""The exemplar canvas: a target and k reference crops in one image for SAM 3.

SAM 3's exemplar boxes must lie in the image being searched, so references from other
images are pasted beside the target. Layout (canvas pixels, the target's own scale)::

    x: 0 ............ w_t ......... w_t + w_s
       +--------------+--------------+
       |              | ref 0 crop   |  cell 0: rows [0, c)
       |   target     +--------------+
       |  (h_t, w_t)  | ref 1 crop   |  cell 1: rows [c, 2c)      c = h_t // k
       |  unchanged   +--------------+
       |              |     ...      |
       +--------------+--------------+

The target keeps its pixels at the top-left, so a canvas pixel inside ``[0, w_t) x
[0, h_t)`` IS the target pixel (no resampling of the target before SAM 3's own resize).
The reference strip starts at ``x = w_t``: references never overlap the target region.
Each reference crop (its box grown by ``context`` on every side, clipped to its image;
:func:`reference_crop`) is resized, aspect kept, to fit its cell and placed at the cell's
top-left; its box, mapped into the canvas, is the positive exemplar prompt. A crop depends
on the reference only, so a reference bank can hold it (:mod:`.exemplar_bank`). Strip
pixels outside the crops are 0 (the mean colour after SAM 3's normalisation).

Shape shorthand: C = 3 channels, (h_t, w_t) the target's valid size, w_s the strip width,
k reference crops, N boxes.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def check_reference_boxes(boxes: Tensor, shapes: Sequence[Tuple[int, int]]) -> None:
    """Refuse an empty reference set and boxes that are empty or leave their image.

    Args:
        boxes: (k, 4) xyxy reference boxes, each in its own image's pixels.
        shapes: k (h, w) valid sizes of the reference images.
    """
    if len(boxes) == 0:
        raise ValueError('empty reference set: SAM 3 exemplar prompting needs at least one '
                         'reference box per queried class (check the dataset mode and shots)')
    tol = 1.0  # a resized box may overshoot its resized image by rounding; crops clip it
    for j, (box, (h, w)) in enumerate(zip(boxes.tolist(), shapes)):
        x0, y0, x1, y1 = box
        if not (-tol <= x0 < x1 <= w + tol and -tol <= y0 < y1 <= h + tol):
            raise ValueError(f'reference box {j} {[round(v, 2) for v in box]} is empty or '
                             f'outside its image (w={w}, h={h}): give xyxy boxes inside the '
                             'reference image')


def crop_window(box: Sequence[float], hw: Tuple[int, int], context: float
                ) -> Tuple[int, int, int, int]:
    """Integer xyxy crop around ``box`` grown by ``context`` x its size, clipped to ``hw``."""
    x0, y0, x1, y1 = box
    dx, dy = context * (x1 - x0), context * (y1 - y0)
    h, w = hw
    cx0, cy0 = max(0, int(x0 - dx)), max(0, int(y0 - dy))
    cx1, cy1 = min(w, int(-(-(x1 + dx) // 1))), min(h, int(-(-(y1 + dy) // 1)))
    return cx0, cy0, max(cx1, cx0 + 1), max(cy1, cy0 + 1)


def reference_crop(ref: Tensor, box: Tensor, context: float) -> Tuple[Tensor, Tensor]:
    """The crop of one reference that the canvas pastes, and its box inside the crop.

    Args:
        ref: (C, h_r, w_r) the reference's valid region (any dtype: normalised floats, or
            uint8 pixels for a reference bank).
        box: (4,) xyxy float box in the reference's pixels.
        context: the crop is the box grown by this fraction of its size on every side.

    Returns:
        (crop (C, h_k, w_k) a view of ``ref``, (4,) the box clipped to the crop, xyxy in crop
        pixels).
    """
    x0, y0, x1, y1 = crop_window(box.tolist(), tuple(ref.shape[-2:]), context)
    lo = box.new_tensor([x0, y0, x0, y0])
    box = box.clamp(lo, box.new_tensor([x1, y1, x1, y1]))
    return ref[:, y0:y1, x0:x1], box - lo


def paste_crops(target: Tensor, crops: Sequence[Tensor], boxes: Sequence[Tensor],
                strip_ratio: float = 0.5) -> Tuple[Tensor, Tensor]:
    """Paste ``k`` reference crops (:func:`reference_crop`) in a strip right of the target.

    Args:
        target: (C, h_t, w_t) the target's valid region (normalised).
        crops: k (C, h_k, w_k) normalised crops.
        boxes: k (4,) xyxy boxes in their crop's pixels.
        strip_ratio: w_s / w_t (0 with no references: the canvas is the target).

    Returns:
        (canvas (C, h_t, w_t + w_s), exemplar boxes (k, 4) xyxy in canvas pixels).
    """
    _, h_t, w_t = target.shape
    k = len(crops)
    w_s = max(1, round(strip_ratio * w_t)) if k else 0
    canvas = target.new_zeros(target.shape[0], h_t, w_t + w_s)
    canvas[:, :, :w_t] = target
    cell = h_t // max(k, 1)
    if k and cell < 2:
        raise ValueError(f'{k} references do not fit beside a target {h_t} pixels high: '
                         'use fewer shots or a larger input size')
    out: List[Tensor] = []
    for j, (crop, box) in enumerate(zip(crops, boxes)):
        s = min(w_s / crop.shape[-1], cell / crop.shape[-2])
        ch, cw = max(1, int(crop.shape[-2] * s)), max(1, int(crop.shape[-1] * s))
        top = j * cell
        canvas[:, top:top + ch, w_t:w_t + cw] = F.interpolate(
            crop[None].float(), (ch, cw), mode='bilinear', align_corners=False)[0]
        # the box in the crop, scaled like the pixels (per-axis factors of the rounded size)
        sx, sy = cw / crop.shape[-1], ch / crop.shape[-2]
        out.append(torch.stack([box[0] * sx + w_t, box[1] * sy + top,
                                box[2] * sx + w_t, box[3] * sy + top]))
    ex = torch.stack(out) if out else target.new_zeros(0, 4)
    return canvas, ex


def build_canvas(target: Tensor, refs: Sequence[Tensor], boxes: Tensor,
                 strip_ratio: float = 0.5, context: float = 0.25) -> Tuple[Tensor, Tensor]:
    """Crop ``k`` references around their boxes and paste them right of the target.

    Args:
        target: (C, h_t, w_t) the target's valid region (normalised).
        refs: k (C, h_r, w_r) reference valid regions (normalised).
        boxes: (k, 4) xyxy reference boxes in their own images' pixels.
        strip_ratio: w_s / w_t (0 with no references: the canvas is the target).
        context: each crop is the box grown by this fraction of its size on every side.

    Returns:
        (canvas (C, h_t, w_t + w_s), exemplar boxes (k, 4) xyxy in canvas pixels).
    """
    parts = [reference_crop(ref, box, context) for ref, box in zip(refs, boxes)]
    return paste_crops(target, [c for c, _ in parts], [b for _, b in parts], strip_ratio)


def canvas_to_normalized(boxes: Tensor, canvas_hw: Tuple[int, int]) -> Tensor:
    """(N, 4) xyxy canvas pixels -> (N, 4) cxcywh in [0, 1] (SAM 3's prompt format)."""
    h, w = canvas_hw
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([(x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h],
                       -1)


def normalized_to_target(boxes: Tensor, canvas_hw: Tuple[int, int],
                         target_hw: Tuple[int, int]) -> Tuple[Tensor, Tensor]:
    """SAM 3's (N, 4) normalised cxcywh canvas boxes -> target pixels.

    Returns:
        (boxes (N, 4) xyxy in target pixels, clipped to the target; inside (N,) bool: the
        box centre lies in the target region, the detections to keep).
    """
    h, w = canvas_hw
    cx, cy, bw, bh = boxes.unbind(-1)
    xyxy = torch.stack([(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w,
                        (cy + bh / 2) * h], -1)
    h_t, w_t = target_hw
    inside = (cx * w < w_t) & (cy * h < h_t)
    lim = xyxy.new_tensor([w_t, h_t, w_t, h_t])
    return torch.minimum(xyxy.clamp(min=0), lim), inside
