"""Exemplar crops of references for a reference bank of :class:`SAM3ExemplarDetector`.

SAM 3 encodes the exemplar pixels together with each target (they are pasted on its canvas),
so no reference *feature* outlives a target. What does depend on the reference only is the
crop the canvas pastes (:func:`~.exemplar_canvas.reference_crop`: the box grown by
``context``, on the reference resized like the targets) and the box inside it. A bank holds
them as raw pixels, so an evaluation with a bank reads and decodes no reference image:

    pixels    (R, 3, H_k, W_k) uint8 BGR crops, zero-padded to the largest crop
    geometry  (R, 6) float32: crop height and width, then the box xyxy in crop pixels

The model's data preprocessor normalises the pixels at use with the ops it applies to
reference images (float, channel order, mean / std), so a bank's canvases equal the canvases
made from the images bit for bit.

Shape shorthand: R references, (h_k, w_k) a crop's size.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from ...datasets.reference_validation import clip_to_image
from ...utils.images import reference_image_batches
from .exemplar_canvas import check_reference_boxes, reference_crop


def encode_exemplar_crops(refs: Sequence[dict], scale: int, context: float,
                          batch_size: int = 4) -> Tuple[List[str], Tuple[Tensor, Tensor]]:
    """The exemplar crops of references, each image read and resized once.

    Args:
        refs: dicts with ``key``, ``bbox`` (xyxy, original pixels), ``img`` ((H0, W0, 3)
            BGR uint8) or ``img_path``, optionally ``img_hw`` (the box is clipped to it, as
            :class:`LoadInContextReferences` does).
        scale: longest side S of the resized references (the test pipeline's
            ``LoadInContextReferences`` scale).
        context: the crops' context (``test_cfg.context``).
        batch_size: reference images held in memory at a time.

    Returns:
        (keys (R,), (pixels (R, 3, H_k, W_k) uint8, geometry (R, 6) float32)).

    Raises:
        ValueError: a box outside its image, or degenerate.
    """
    refs = list(refs)
    crops: List[Optional[Tuple[Tensor, Tensor]]] = [None] * len(refs)
    for batch in reference_image_batches(refs, scale, batch_size):
        for img, s, idx in batch:
            pixels = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
            hw = tuple(img.shape[:2])
            for j in idx:
                r = refs[j]
                what = f'reference {r.get("key")!r}'
                box = clip_to_image(r['bbox'], r.get('img_hw'), what) * s  # as the pipeline
                box = torch.from_numpy(box)
                check_reference_boxes(box[None], [hw])
                crops[j] = reference_crop(pixels, box, context)
    if not refs:
        return [], (torch.zeros(0, 3, 1, 1, dtype=torch.uint8), torch.zeros(0, 6))
    h = max(c.shape[-2] for c, _ in crops)
    w = max(c.shape[-1] for c, _ in crops)
    out = torch.zeros(len(refs), 3, h, w, dtype=torch.uint8)
    geometry = torch.zeros(len(refs), 6)
    for j, (crop, box) in enumerate(crops):
        out[j, :, :crop.shape[-2], :crop.shape[-1]] = crop
        geometry[j, :2] = torch.tensor(crop.shape[-2:], dtype=torch.float32)
        geometry[j, 2:] = box
    return [r['key'] for r in refs], (out, geometry)


def decode_exemplar_crop(pixels: Tensor, geometry: Tensor, preprocessor: nn.Module
                         ) -> Tuple[Tensor, Tensor]:
    """One banked crop, normalised as the data preprocessor normalises reference images.

    Args:
        pixels: (3, H_k, W_k) padded BGR pixel values (any dtype; values 0-255).
        geometry: (6,) crop height, width and the box xyxy in crop pixels.
        preprocessor: the model's :class:`InContextDataPreprocessor`.

    Returns:
        (crop (3, h_k, w_k) normalised, box (4,) xyxy in crop pixels).
    """
    h, w = int(geometry[0]), int(geometry[1])
    # the ops and order of InContextDataPreprocessor._prep_refs: float, channels, mean / std
    crop = pixels[:, :h, :w].float()
    if preprocessor._channel_conversion:
        crop = crop[[2, 1, 0], ...]
    if preprocessor._enable_normalize:
        crop = (crop - preprocessor.mean) / preprocessor.std
    return crop, geometry[2:].float()
