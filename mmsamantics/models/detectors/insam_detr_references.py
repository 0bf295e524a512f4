"""The reference side of InSAM-DETR: the tokens of each reference, encoded once.

A reference is a box on an image. SAM (frozen) turns it into T' tokens of width D, made by
the detector's reference sources (:mod:`..reference_sources`) and concatenated in their
order: :class:`SAMMaskTokens` alone is the paper's encoder (Espinosa et al. §5.1, Fig. 2);
:class:`RegionTokens` and :class:`ShapeToken` add the encoder's view of the object and its
outline.

Tokens are frozen, so they are cached in memory, banked (``encode_references``) and stored in
the feature cache, always through :meth:`reference_tokens_from`.

Shape shorthand: R references, T' tokens per reference, D SAM prompt width, S input side.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from ...utils.images import preprocess_images, reference_image_batches
from ..reference_sources import ReferenceView
from .insam_detr_pairs import GatheredReferences


class InSAMReferenceTokensMixin:
    """Reference tokens for :class:`InSAMDETR` (needs ``backbone``, ``mask_head.decoder``,
    ``reference_sources``, ``reference_store``, ``data_preprocessor``, ``ref_batch_size``)."""

    @property
    def num_reference_tokens(self) -> int:
        """T', the tokens per reference that :meth:`reference_tokens_from` returns."""
        return self._token_slices[-1][1]

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
            (R, T', D) tokens: every source's, in the order of ``reference_sources``, in
            the dtype of the first.
        """
        *levels, emb = feats
        view = ReferenceView(levels, emb, boxes, None if rows is None else list(rows),
                             self.mask_head.decoder, self.backbone.img_size,
                             getattr(self.backbone, 'out_levels', None))
        parts = [src(view) for src in self.reference_sources]
        if len(parts) == 1:
            return parts[0]
        return torch.cat([p.to(parts[0].dtype) for p in parts], dim=1)

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

