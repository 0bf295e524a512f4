"""References described by the features under their masks: the matcher's DINOv2 prototypes
and PerSAM's SAM target embeddings are made the same way, from the same inputs.

A reference is its image and its mask (its box, filled, where the pipeline gives no mask);
a detector defines ``_encode_references(images, masks, shapes) -> (R, C)`` and gets here the
batch lookup through its reference store and the bank builder's ``encode_references``.

Shape shorthand: R references, S the reference input side, C the feature width.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor

from mmdet.structures import SampleList
from ...utils.images import (fill_box, preprocess_images, reference_image_batches,
                             reference_mask)


class MaskedReferencesMixin:
    """Reference features from reference masks for an :class:`InContextDetector` with a SAM
    ``backbone`` (its input side), a ``data_preprocessor`` and ``_encode_references``."""

    _warned_box_refs = False

    def _encode_references(self, images: Tensor, masks: Tensor,
                           shapes: Optional[List[Tuple[int, int]]] = None) -> Tensor:
        """(R, 3, S, S) reference images, (R, S, S) bool masks and their (R) valid (h, w)
        sizes -> (R, C) features."""
        raise NotImplementedError(f'{type(self).__name__} must define _encode_references()')

    def _reference_masks(self, ds) -> Tensor:
        """(R, S, S) bool masks of a sample's references; boxes where a mask is missing."""
        boxes = ds.ref_instances.bboxes
        side = self.backbone.img_size
        masks = ds.get('ref_masks', None)
        if masks is None:
            if not self._warned_box_refs:
                print_log('the pipeline gives no reference masks (LoadInContextReferences('
                          'with_mask=True)): reference boxes are pooled instead',
                          logger='current', level=30)
                self._warned_box_refs = True
            masks = boxes.new_zeros(len(boxes), side, side, dtype=torch.bool)
        masks = masks.clone()
        empty = ~masks.flatten(1).any(1)
        for j in empty.nonzero()[:, 0].tolist():  # no (or an empty) mask: fill its box
            fill_box(masks[j], boxes[j])
        return masks

    def reference_features(self, batch_data_samples: SampleList
                           ) -> List[Tuple[Tensor, Tensor]]:
        """Per sample: (labels (R,), features (R, C)) of its references.

        A reference key is encoded once: features come from :attr:`reference_store` (lent
        by the caller, the reference bank, the in-memory cache), and only the rest is
        computed (all missing references of the batch in one call).
        """
        sources: Dict[str, Tuple[int, int]] = {}  # key -> (sample, row) of a loaded image
        keys: List[str] = []
        for b, ds in enumerate(batch_data_samples):
            ks = ds.metainfo.get('ref_keys', [])
            if 'ref_instances' not in ds or not len(ks):
                raise ValueError(
                    f'target {ds.metainfo.get("img_path")} has no references: every queried '
                    'class needs at least one reference (check the dataset mode and that each '
                    'class of metainfo.classes has a reference).')
            if ds.get('ref_inputs', None) is not None:
                for j, k in enumerate(ks):
                    sources.setdefault(k, (b, j))
            keys += list(ks)

        def encode(todo: List[str]) -> Tensor:
            absent = [k for k in todo if k not in sources]
            if absent:
                raise ValueError(f'references {absent[:5]} are neither in the reference bank '
                                 f'{self.reference_bank!r} nor loaded as images: rebuild the '
                                 'bank for this reference set, or drop --ref-bank')
            masks: Dict[int, Tensor] = {}
            imgs, ms, shapes = [], [], []
            for b, j in (sources[k] for k in todo):
                ds = batch_data_samples[b]
                if b not in masks:
                    masks[b] = self._reference_masks(ds)
                side = ds.ref_inputs.shape[-1]
                hw = ds.metainfo.get('ref_img_shapes') or [(side, side)] * len(ds.ref_inputs)
                imgs.append(ds.ref_inputs[j])
                ms.append(masks[b][j])
                shapes.append(tuple(hw[j]))
            return self._encode_references(torch.stack(imgs), torch.stack(ms), shapes)[:, None]

        feats = self.reference_store.get(keys, encode, self.data_preprocessor.device).flatten(1)
        out, n = [], 0
        for ds in batch_data_samples:
            r = len(ds.metainfo['ref_keys'])
            out.append((ds.ref_instances.labels.to(feats.device), feats[n:n + r]))
            n += r
        return out

    @torch.no_grad()
    def encode_references(self, refs: Sequence[dict], batch_size: int = 4,
                          scale: Optional[int] = None) -> Tuple[List[str], Tensor]:
        """Features of references (:meth:`_encode_references`), each image read and
        preprocessed once.

        Used by the bank builder and the inference API; the features equal the detector's
        own (resize of :class:`LoadInContextReferences`, same preprocessor, the reference's
        mask, or its box where it has none).

        Args:
            refs: dicts with ``key``, ``bbox`` (xyxy, original pixels), ``img``
                ((H0, W0, 3) BGR uint8) or ``img_path``, and optionally ``mask`` ((H0, W0)
                bool) or ``segmentation`` with ``img_hw``.
            batch_size: images per preprocessing batch.
            scale: longest side of the resized images (default: the SAM input size S).

        Returns:
            (keys (R,), features (R, 1, C) float32 on the CPU) in the order of ``refs``.
        """
        refs = list(refs)
        out: List[Optional[Tensor]] = [None] * len(refs)
        for batch in reference_image_batches(refs, scale or self.backbone.img_size,
                                             batch_size):
            x = preprocess_images(self.data_preprocessor, [im for im, _, _ in batch])
            rows, masks, shapes, order = [], [], [], []
            for i, (im, s, idx) in enumerate(batch):
                for j in idx:
                    m = torch.zeros(x.shape[-2:], dtype=torch.bool)
                    r = reference_mask(refs[j], im.shape[:2], s)
                    m[:r.shape[0], :r.shape[1]] = torch.from_numpy(r)
                    rows.append(i)
                    masks.append(m)
                    shapes.append(tuple(im.shape[:2]))
                    order.append(j)
            feats = self._encode_references(x[rows], torch.stack(masks).to(x.device), shapes)
            for j, f in zip(order, feats.float().cpu()):
                out[j] = f[None]
        if not out:
            return [], torch.zeros(0, *self.reference_feature_shape)
        return [r['key'] for r in refs], torch.stack(out)
