"""The reference side of InSAM-DETR: the tokens of each reference, encoded once.

A reference is a box on an image. SAM (frozen) turns it into T' tokens of width D:

- ``reference_encoder='sam_tokens'`` (the paper, Espinosa et al. §5.1, Fig. 2): the
  mask decoder's T output mask tokens for the box prompt;
- ``'sam_tokens+regions'``: those plus the box average of each encoder level
  (:mod:`..layers.region_tokens`): the encoder's view of the object, which the mask tokens
  mostly drop (an option beside the paper's design);
- ``'sam_tokens+regions+shape'``: those plus a shape token, SAM's own mask for the box in
  the box's frame (:mod:`..layers.shape_tokens`): the outline, which the box averages of
  the region tokens barely see.

Tokens are frozen, so they are cached in memory, banked (``encode_references``) and stored in
the feature cache, always through :meth:`reference_tokens_from`.

Shape shorthand: R references, T' tokens per reference, D SAM prompt width, S input side.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from ...structures import feature_rows
from ...utils.images import preprocess_images, reference_image_batches
from ..layers.region_tokens import box_region_tokens, num_region_tokens
from ..layers.shape_tokens import box_shape_tokens, shape_grid
from ..layers.precision import to_float
from .insam_detr_pairs import GatheredReferences

REFERENCE_ENCODERS = ('sam_tokens', 'sam_tokens+regions', 'sam_tokens+regions+shape',
                      'class_code')


class InSAMReferenceTokensMixin:
    """Reference tokens for :class:`InSAMDETR` (needs ``backbone``, ``mask_head.decoder``,
    ``reference_encoder``, ``reference_store``, ``data_preprocessor``, ``ref_batch_size``)."""

    @property
    def num_reference_tokens(self) -> int:
        """T', the tokens per reference that :meth:`reference_tokens_from` returns."""
        dec = self.mask_head.decoder
        n = dec.num_mask_tokens
        if self.reference_encoder.startswith('sam_tokens+regions'):
            n += num_region_tokens(list(self.backbone.out_channels)[:-1], dec.embed_dim)
        if self.reference_encoder.endswith('+shape'):
            shape_grid(dec.embed_dim)  # raises a clear error when D is not a square
            n += 1
        return n

    def reference_tokens_from(self, feats: Sequence, boxes: Tensor,
                              rows: Optional[Sequence[int]] = None) -> Tensor:
        """Tokens of R references from their images' backbone outputs.

        Args:
            feats: the backbone's ``(*levels, embedding)`` of B images: levels
                (B, C_l, h, w), embedding (B, D, h, w) (a tuple of tensors for SAM 2).
            boxes: (R, 4) xyxy in input pixels.
            rows: (R,) the image of each box (default: box r on image r, B = R). Only the
                embedding is gathered per box (SAM's decoder takes one per prompt); the
                levels are pooled in place.

        Returns:
            (R, T', D) tokens: the T mask tokens, then (with regions) the region tokens,
            then (with shape) the shape token.
        """
        *levels, emb = feats
        dec = self.mask_head.decoder
        tokens = dec.mask_tokens(emb if rows is None else feature_rows(emb, list(rows)), boxes)
        if not self.reference_encoder.startswith('sam_tokens+regions'):
            return tokens
        idx = None if rows is None else torch.as_tensor(list(rows), device=boxes.device)
        size = self.backbone.img_size
        parts = [tokens, box_region_tokens(levels, boxes, size, dec.embed_dim, idx)]
        if self.reference_encoder.endswith('+shape'):
            logits = self._reference_masks(emb, boxes, list(range(len(boxes)))
                                           if rows is None else list(rows))
            parts.append(box_shape_tokens(logits, boxes, size, dec.embed_dim))
        return torch.cat([p.to(tokens.dtype) for p in parts], dim=1)

    def _reference_masks(self, emb, boxes: Tensor, rows: List[int]) -> Tensor:
        """SAM's single-mask logits (R, 1, 4h, 4w) for each reference box, from one
        batched decoder call per image (``rows[r]``: the image of box r in ``emb``).

        The mask tokens came from the same prompts, but SAM's decoders only make masks one
        image at a time; the extra decoder pass is made once per reference (tokens are
        cached and banked), against the image encoder's pass for every target.
        """
        if not rows:  # no reference: no mask (box_shape_tokens makes no token of it)
            return boxes.new_zeros(0, 1, 1, 1)
        out: List[Optional[Tensor]] = [None] * len(rows)
        for i in sorted(set(rows)):
            sel = [r for r, b in enumerate(rows) if b == i]
            logits, _ = self.mask_head.decoder.predict_masks(feature_rows(emb, [i]),
                                                             boxes[sel])
            for r, lg in zip(sel, logits):
                out[r] = lg
        return torch.stack(out)

    def _reference_tokens(self, inputs: Optional[Tensor], boxes: Tensor, keys: List[str],
                          rows: Optional[List[int]] = None) -> Tensor:
        """(R', 3, S, S) images + (R, 4) boxes -> (R, T', D) tokens.

        Tokens come from :attr:`reference_store` (lent, the reference bank, the in-memory
        cache), else SAM. ``rows[j]`` is the image of reference j in ``inputs`` (default:
        j; -1 = no image, allowed when its key is lent, in the bank or cached).
        """
        rows = list(range(len(keys))) if rows is None else rows
        first: Dict[str, int] = {}
        for j, k in enumerate(keys):
            first.setdefault(k, j)

        def encode(todo: List[str]) -> Tensor:
            missing = [k for k in todo if rows[first[k]] < 0 or inputs is None]
            if missing:
                raise ValueError(f'references {missing[:3]} have no image and are not in the '
                                 f'reference bank {self.reference_bank!r}: load their images '
                                 '(LoadInContextReferences) or encode them into the bank '
                                 '(tools/misc/encode_references.py)')
            idx, out, n = [first[k] for k in todo], [], self.ref_batch_size
            with torch.no_grad():  # SAM per chunk of ``ref_batch_size`` references
                for c in [idx[s:s + n] for s in range(0, len(idx), n)]:
                    feats = self.backbone(inputs[[rows[j] for j in c]])
                    out.append(self.reference_tokens_from(feats, boxes[c]))
            return torch.cat(out)

        return self.reference_store.get(keys, encode, self.query_embedding.weight.device)

    @torch.no_grad()
    def encode_references(self, refs: Sequence[dict], batch_size: int = 4,
                          scale: Optional[int] = None) -> Tuple[List[str], Tensor]:
        """Reference tokens (:meth:`reference_tokens_from`), one SAM pass per image.

        Used by the bank builder, the inference API and the t-SNE analysis; the tokens equal
        the detector's own (resize of :class:`LoadInContextReferences`, same preprocessor).

        Args:
            refs: dicts with ``key``, ``bbox`` (xyxy, original pixels) and ``img``
                ((H0, W0, 3) BGR uint8) or ``img_path``.
            batch_size: images per SAM pass.
            scale: longest side S of the resized images (default: the SAM input size).

        Returns:
            (keys (R,), tokens (R, T', D) float32 on the CPU) in the order of ``refs``.
        """
        refs = list(refs)
        out: List[Optional[Tensor]] = [None] * len(refs)
        for batch in reference_image_batches(refs, scale or self.backbone.img_size,
                                             batch_size):
            x = preprocess_images(self.data_preprocessor, [im for im, _, _ in batch])
            order = [j for _, _, idx in batch for j in idx]
            rows = [i for i, (_, _, idx) in enumerate(batch) for _ in idx]
            boxes = np.stack([np.asarray(refs[j]['bbox'], np.float32) * s
                              for _, s, idx in batch for j in idx])
            tok = self.reference_tokens_from(self.backbone(x),
                                             torch.as_tensor(boxes, device=x.device), rows)
            for j, t in zip(order, tok.float().cpu()):
                out[j] = t
        return [r['key'] for r in refs], torch.stack(out) if out else torch.zeros(0)

    def query_shape_tokens(self, embedding, coords: Tensor, img_idx: Tensor,
                           img_shapes: Sequence[Tuple[int, int]],
                           scores: Optional[Tensor] = None, top_k: Optional[int] = None,
                           chunk: int = 1024) -> Tuple[Tensor, Tensor]:
        """Shape tokens of SAM's masks for the queries' boxes (:class:`ShapeAwareDETRHead`).

        Args:
            embedding: the SAM embedding of the B targets (a tuple for SAM 2 / HQ-SAM).
            coords: (P, Q, 4) normalised cxcywh boxes of each pair's queries.
            img_idx: (P,) target of each pair. img_shapes: (h, w) of each target in input
                pixels (the boxes' normalisation).
            scores: (P, Q) the queries' scores, with ``top_k``: only the ``top_k`` best
                queries of each target (over all its pairs) are segmented.
            chunk: boxes per SAM decoder call (bounds the (N, 1, 4h, 4w) logits in memory).

        Returns:
            (P, Q, D) float32 shape tokens (no gradient: SAM is frozen, boxes detached;
            zeros for the queries not segmented) and the (P, Q) bool mask of the segmented.
        """
        dec, (p, q) = self.mask_head.decoder, coords.shape[:2]
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
            for s in range(0, len(bx), chunk):
                logits, _ = dec.predict_masks(emb, bx[s:s + chunk])
                toks.append(box_shape_tokens(logits, bx[s:s + chunk], self.backbone.img_size,
                                             dec.embed_dim))
            block = out[rows]
            block[sel] = torch.cat(toks)[:, 0]
            out[rows] = block
        return out, keep

    def _gathered_tokens(self, refs: GatheredReferences) -> Tensor:
        """(R, T', D) tokens of the gathered references: cached ones as given, the others
        through :meth:`_reference_tokens` in one batched call."""
        enc_keys = [k for g, ks in zip(refs.given, refs.keys) if g is None for k in ks]
        encoded = None
        if enc_keys:
            # row of each reference in the stacked images; -1 = no image (bank only)
            rows, avail, n = [], [], 0
            for x, b in zip(refs.inputs, refs.boxes):
                if x is None:
                    rows += [-1] * len(b)
                else:
                    rows += list(range(n, n + len(x)))
                    avail.append(x)
                    n += len(x)
            encoded = self._reference_tokens(
                torch.cat(avail) if avail else None, torch.cat(refs.boxes).float(), enc_keys,
                rows=rows)
        parts, e = [], 0
        for g, ks in zip(refs.given, refs.keys):
            if g is None:
                parts.append(encoded[e:e + len(ks)])
                e += len(ks)
            else:
                parts.append(g)
        return torch.cat(parts)

