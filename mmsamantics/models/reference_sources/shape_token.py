"""The shape token as a reference source: SAM's own mask for the box, in the box's frame.

The outline of an object, which the region tokens' box averages barely see
(:mod:`..layers.shape_tokens`). The same token is made for detections' boxes by
:class:`QueryShapeEncoder`, which the shape-aware head compares with the references'.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from ...structures import feature_rows
from ..layers.precision import to_float
from ..layers.shape_tokens import box_shape_tokens, shape_grid
from .base import ReferenceSource, ReferenceView


@MODELS.register_module()
class ShapeToken(ReferenceSource):
    """One token per reference: SAM's single-mask logits for the box, resampled to a
    g x g grid in the box's frame (D = g * g)."""

    name = 'shape'

    def num_tokens(self, level_channels: Sequence[int], decoder: nn.Module) -> int:
        shape_grid(int(decoder.embed_dim))  # raises a clear error when D is not a square
        return 1

    def forward(self, view: ReferenceView) -> Tensor:
        """(R, 1, D) shape tokens.

        SAM's decoders make masks one image at a time: one batched call per image of the
        view; done once per reference (tokens are cached and banked), against the image
        encoder's pass for every target.
        """
        rows, boxes = view.box_rows, view.boxes
        if not rows:  # no reference: no mask
            return boxes.new_zeros(0, 1, int(view.decoder.embed_dim))
        out: List[Optional[Tensor]] = [None] * len(rows)
        for i in sorted(set(rows)):
            sel = [r for r, b in enumerate(rows) if b == i]
            logits, _ = view.decoder.predict_masks(feature_rows(view.embedding, [i]),
                                                   boxes[sel])
            for r, lg in zip(sel, logits):
                out[r] = lg
        return box_shape_tokens(torch.stack(out), boxes, view.input_size,
                                int(view.decoder.embed_dim))


class QueryShapeEncoder:
    """Shape tokens of SAM's masks for detections' boxes, as :class:`ShapeToken` makes them
    for references. Not a module: it holds the detector's frozen SAM decoder, which the
    detector's state dict already saves once.

    Args:
        decoder: the frozen SAM prompt decoder. input_size: S, SAM's input side.
        chunk: boxes per SAM decoder call (bounds the (N, 1, 4h, 4w) logits in memory).
    """

    def __init__(self, decoder: nn.Module, input_size: int, chunk: int = 1024) -> None:
        self.decoder, self.input_size, self.chunk = decoder, int(input_size), chunk

    def __call__(self, embedding, coords: Tensor, img_idx: Tensor,
                 img_shapes: Sequence[Tuple[int, int]], scores: Optional[Tensor] = None,
                 top_k: Optional[int] = None) -> Tuple[Tensor, Tensor]:
        """Shape tokens of the queries' boxes.

        Args:
            embedding: the SAM embedding of the B targets (a tuple for SAM 2 / HQ-SAM).
            coords: (P, Q, 4) normalised cxcywh boxes of each pair's queries.
            img_idx: (P,) target of each pair. img_shapes: (h, w) of each target in input
                pixels (the boxes' normalisation).
            scores: (P, Q) the queries' scores, with ``top_k``: only the ``top_k`` best
                queries of each target (over all its pairs) are segmented.

        Returns:
            (P, Q, D) float32 shape tokens (no gradient: SAM is frozen, boxes detached;
            zeros for the queries not segmented) and the (P, Q) bool mask of the segmented.
        """
        dec, (p, q) = self.decoder, coords.shape[:2]
        scale = coords.new_tensor([[w, h, w, h] for h, w in img_shapes])[img_idx]  # (P, 4)
        boxes = bbox_cxcywh_to_xyxy(coords.detach().float()) * scale[:, None]
        out = coords.new_zeros(p, q, dec.embed_dim, dtype=torch.float32)
        keep = torch.ones(p, q, dtype=torch.bool, device=coords.device)
        for b in sorted(set(img_idx.tolist())):  # one host sync per batch, not per pair
            rows = (img_idx == b).nonzero()[:, 0]
            if top_k is not None:
                s = scores[rows].detach().flatten()
                sel = torch.zeros_like(s, dtype=torch.bool)
                sel[s.topk(min(top_k, s.numel())).indices] = True
                keep[rows] = sel.reshape(len(rows), q)
            sel = keep[rows]
            bx, emb, toks = boxes[rows][sel], to_float(feature_rows(embedding, [b])), []
            if not len(bx):
                continue
            for s in range(0, len(bx), self.chunk):
                logits, _ = dec.predict_masks(emb, bx[s:s + self.chunk])
                toks.append(box_shape_tokens(logits, bx[s:s + self.chunk], self.input_size,
                                             dec.embed_dim))
            block = out[rows]
            block[sel] = torch.cat(toks)[:, 0]
            out[rows] = block
        return out, keep
