"""Training-free in-context detector: SAM grid proposals scored by DINOv2 cosine matching.

"There is no SAMantics" (§6, Table 4) injects semantics into SAM without training: SAM
proposes class-agnostic masks from a point grid, DINOv2 describes each mask, and a mask is
labelled with the reference class whose prototype it is most similar to (after PerSAM,
Matcher and the InsDet baseline). Here it is one registered mmdet detector: multi-class,
multi-instance, run by ``tools/test.py`` with COCO box/mask AP and AR.

Speed: every target is embedded ONCE by SAM and ONCE by DINOv2 (its valid region only, no
token spent on padding); a proposal's feature is the masked average of the dense DINOv2 map
inside its mask (``feature_mode='dense'``), a matrix product for all proposals.
``feature_mode='crop'`` encodes one DINOv2 crop per proposal (the InsDet way) for
comparison (``tools/analysis/benchmark_matcher.py``).
Reference features are computed once per reference key and kept (:class:`ReferenceStore`:
in memory, or in a reference bank written by ``tools/misc/encode_references.py``).

Shape shorthand: B targets, S SAM input side, L = S / 4 the low-res mask side, G DINOv2 input
side, g = G / 14 its token grid, C DINOv2 width, N proposals, R references, K classes.
"""
import math
import time
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from ...structures import ReferenceStore, signature_of, weights_fingerprint
from ...utils.images import (fill_box, preprocess_images, reference_image_batches,
                             reference_mask)
from ..layers.precision import fp32_region
from ..mask_heads.sam_box_prompt_mask_head import _image_slice
from .reference_store_mixin import ReferenceStoreMixin
from ..matching import (class_prototypes, cosine_scores, crop_region_features, grid_weights,
                        mask_nms, masks_to_boxes, weighted_token_average)

FEATURE_MODES = ('dense', 'crop')


@MODELS.register_module()
class SAMDINOv2Matcher(ReferenceStoreMixin, BaseDetector):
    """SAM point-grid proposals + DINOv2 prototype matching (no trainable weights).

    Args:
        backbone: frozen SAM image encoder (:class:`SAMImageEncoder`); only its neck
            embedding is used, so ``out_indices=()`` skips the block outputs.
        mask_head: :class:`SAMBoxPromptMaskHead`; its SAM decoder makes the proposals and
            its ``postprocess`` the final full-resolution masks.
        feature_extractor: frozen :class:`DINOv2Encoder`.
        proposal_generator: :class:`SAMGridProposals` config (points per side, filters).
        feature_mode: ``'dense'`` (one DINOv2 pass per image, masked pooling) or
            ``'crop'`` (one DINOv2 pass per proposal box crop, masked pooling inside it).
        crop_size: side of the crops in ``'crop'`` mode (multiple of 14).
        crop_batch_size: crops per DINOv2 call in ``'crop'`` mode.
        reference_bank: reference bank file (``tools/misc/encode_references.py``) whose
            per-reference features replace encoding the reference images.
        ref_cache_size: reference features kept in memory per feature mode (least recently
            used evicted first); 0 disables the cache.
        ref_cache_dtype: dtype of the cached features (``'float32'``: bit-identical to
            fresh ones; ``'float16'`` halves their memory).
        ref_cache_device: where cached features are kept (default: the CPU).
        test_cfg: ``score_thr`` (min cosine, default -1 = keep all), ``nms_thr`` (class-wise
            mask-NMS IoU, 0.5), ``max_per_img`` (100), ``score_mode`` (``'cosine'``, the
            paper's; or ``'cosine_x_iou'``: times SAM's predicted IoU).
        data_preprocessor: :class:`InContextDataPreprocessor` (SAM's normalisation, which
            is also DINOv2's).
    """

    def __init__(self,
                 backbone: dict,
                 mask_head: dict,
                 feature_extractor: dict,
                 proposal_generator: dict,
                 feature_mode: str = 'dense',
                 crop_size: int = 224,
                 crop_batch_size: int = 32,
                 reference_bank: Optional[str] = None,
                 ref_cache_size: int = 100_000,
                 ref_cache_dtype: str = 'float32',
                 ref_cache_device: str = 'cpu',
                 test_cfg: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if feature_mode not in FEATURE_MODES:
            raise ValueError(f'feature_mode must be one of {FEATURE_MODES}, got {feature_mode!r}')
        if crop_size % 14:
            raise ValueError(f'crop_size must be a multiple of 14, got {crop_size}')
        self.backbone = MODELS.build(backbone)
        self.mask_head = MODELS.build(mask_head)
        self.feature_extractor = MODELS.build(feature_extractor)
        self.proposal_generator = TASK_UTILS.build(proposal_generator)
        self.feature_mode = feature_mode
        self.crop_size = crop_size
        self.crop_batch_size = crop_batch_size
        self.test_cfg = dict(score_thr=-1.0, nms_thr=0.5, max_per_img=100, score_mode='cosine')
        self.test_cfg.update(test_cfg or {})
        if self.test_cfg['score_mode'] not in ('cosine', 'cosine_x_iou'):
            raise ValueError("test_cfg.score_mode must be 'cosine' or 'cosine_x_iou'")
        self._signature: Optional[str] = None  # DINOv2 weights' fingerprint
        # key -> (1, C) feature; the cache is per feature mode (dense and crop differ)
        self.reference_store = ReferenceStore(
            signature=self._reference_signature, bank_file=reference_bank,
            max_entries=ref_cache_size, cache_dtype=getattr(torch, ref_cache_dtype),
            cache_device=ref_cache_device, namespace=self._feature_mode,
            made_with='DINOv2, feature mode or preprocessing')
        self._warned_box_refs = False
        # seconds per stage, accumulated over predict calls while profile_stages is set
        # (benchmark_matcher.py sets it and reads them)
        self.profile_stages = False
        self.stage_times: Dict[str, float] = {}
        self._register_load_state_dict_pre_hook(lambda *a, **k: self._invalidate_caches())

    # ------------------------------------------------------------------ caches
    @property
    def cache_signature(self) -> str:
        """Fingerprint of what reference features depend on: DINOv2 weights and input size,
        the feature mode and the preprocessing (recomputed when the mode is switched;
        only the weights' fingerprint, the costly part, is kept until weights change)."""
        if self._signature is None:
            self._signature = weights_fingerprint(self.feature_extractor)
        dp = self.data_preprocessor
        parts = dict(kind='SAMDINOv2Matcher', mode=self.feature_mode, dense_region='valid',
                     crop=self.crop_size if self.feature_mode == 'crop' else None,
                     dinov2=self._signature, dinov2_size=self.feature_extractor.img_size,
                     sam_size=self.backbone.img_size,
                     mean=[round(float(v), 6) for v in dp.mean.flatten()],
                     std=[round(float(v), 6) for v in dp.std.flatten()],
                     bgr_to_rgb=bool(dp._channel_conversion))
        return signature_of(parts)

    # a bound method, not a lambda: a deep copy of the model reads its own state
    def _feature_mode(self) -> str:
        return self.feature_mode

    @contextmanager
    def _timed(self, stage: str, like: Tensor) -> Iterator[None]:
        """Adds the block's seconds to ``stage_times`` when ``profile_stages`` is set (a
        GPU is synchronised around each stage, so it stays off outside benchmarks)."""
        if not self.profile_stages:
            yield
            return
        if like.is_cuda:
            torch.cuda.synchronize(like.device)
        t = time.perf_counter()
        yield
        if like.is_cuda:
            torch.cuda.synchronize(like.device)
        self.stage_times[stage] = self.stage_times.get(stage, 0.0) + time.perf_counter() - t

    # ------------------------------------------------------------------ features
    def dense_map(self, image: Tensor, valid: Tuple[int, int]) -> Tensor:
        """DINOv2 tokens of the VALID region of one padded image.

        Args:
            image: (3, S, S) preprocessed image, padded bottom/right.
            valid: (H_v, W_v) its unpadded size.

        Returns:
            (C, g_h, g_w) token map of the valid region, whose longest side is resized to
            DINOv2's ``img_size`` (no token is spent on padding: a 4:3 image costs 25% fewer
            tokens than its padded square, and no region feature mixes padding in).
        """
        h, w = int(valid[0]), int(valid[1])
        enc = self.feature_extractor
        return enc(image[None, :, :h, :w], enc.input_size(h, w))[0]

    @staticmethod
    def valid_masks(masks: Tensor, valid: Tuple[int, int], side: int) -> Tensor:
        """(N, M, M) masks on the padded S x S canvas -> their (N, m_h, m_w) valid part."""
        scale = masks.shape[-1] / side
        return masks[:, :max(1, math.ceil(valid[0] * scale)), :max(1, math.ceil(valid[1] * scale))]

    def region_features(self, images: Tensor, masks: Tensor, valid: Tuple[int, int],
                        dense: Optional[Tensor] = None) -> Tensor:
        """DINOv2 feature of each region of ONE image.

        Args:
            images: (1, 3, S, S) the preprocessed image.
            masks: (N, M, M) bool region masks on the padded S x S canvas at any
                resolution M (SAM's low-res L, or S).
            valid: (H_v, W_v) the image's unpadded size in S pixels.
            dense: (C, g_h, g_w) its :meth:`dense_map`, if already computed (dense mode).

        Returns:
            (N, C) masked averages of DINOv2 tokens.
        """
        with fp32_region(images.device):  # pooling in float32 (DINOv2 sets its own dtype)
            if self.feature_mode == 'dense':
                if dense is None:
                    dense = self.dense_map(images[0], valid)
                m = self.valid_masks(masks, valid, images.shape[-1])
                return weighted_token_average(dense.float(),
                                              grid_weights(m, dense.shape[-2:]))
            return crop_region_features(self.feature_extractor, images, masks,
                                        self.crop_size, self.crop_batch_size).float()

    def _encode_references(self, images: Tensor, masks: Tensor,
                           shapes: Optional[List[Tuple[int, int]]] = None) -> Tensor:
        """(R, 3, S, S) reference images, (R, S, S) bool masks and their (R) valid
        (h, w) sizes (default: the whole canvas) -> (R, C) features."""
        side = images.shape[-1]
        shapes = shapes or [(side, side)] * len(images)
        return torch.cat([self.region_features(im[None], m[None], hw)
                          for im, m, hw in zip(images, masks, shapes)])

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

    # ------------------------------------------------------------------ detection
    def match(self, feats: Tensor, iou_scores: Tensor, masks: Tensor, ref_labels: Tensor,
              ref_feats: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Label proposals by their most similar class prototype, de-duplicate, keep top-k.

        Args:
            feats: (N, C) proposal features. iou_scores: (N,) SAM's predicted IoU.
            masks: (N, L, L) proposal masks (for the class-wise mask NMS).
            ref_labels: (R,) reference classes. ref_feats: (R, C) reference features.

        Returns:
            (keep (N',) proposal indices, scores (N',), labels (N',)) by decreasing score.
        """
        classes, protos = class_prototypes(ref_feats, ref_labels)
        sims = cosine_scores(feats, protos)  # (N, K)
        scores, best = sims.max(1)
        labels = classes[best]
        if self.test_cfg['score_mode'] == 'cosine_x_iou':
            scores = scores * iou_scores.clamp(0, 1)
        idx = (scores > self.test_cfg['score_thr']).nonzero()[:, 0]
        keep = idx[mask_nms(masks[idx], scores[idx], self.test_cfg['nms_thr'], labels[idx])]
        keep = keep[:self.test_cfg['max_per_img']]
        return keep, scores[keep], labels[keep]

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Boxes and masks of every queried class (label = reference class) per target."""
        with self._timed('sam_encoder', batch_inputs):
            embedding = self.backbone(batch_inputs)[-1]
        with self._timed('references', batch_inputs):
            refs = self.reference_features(batch_data_samples)
        results = []
        for i, ds in enumerate(batch_data_samples):
            meta = ds.metainfo
            ori = tuple(meta['ori_shape'][:2]) if rescale else tuple(meta['img_shape'][:2])
            with self._timed('proposals', batch_inputs):
                props = self.proposal_generator(self.mask_head.decoder,
                                                _image_slice(embedding, i),
                                                tuple(meta['img_shape'][:2]))
            with self._timed('features', batch_inputs):
                feats = self.region_features(batch_inputs[i:i + 1], props.masks,
                                             tuple(meta['img_shape'][:2]))
            with self._timed('matching', batch_inputs), fp32_region(batch_inputs.device):
                keep, scores, labels = self.match(feats, props.iou_scores.float(),
                                                  props.masks, *refs[i])
            with self._timed('masks', batch_inputs):
                masks = self.mask_head.postprocess(props.logits[keep][:, None].float(),
                                                   tuple(meta['img_shape'][:2]), ori)
                res = InstanceData(bboxes=masks_to_boxes(masks), scores=scores, labels=labels,
                                   masks=masks)
            results.append(res)
        return self.add_pred_to_datasample(batch_data_samples, results)

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        raise RuntimeError('SAMDINOv2Matcher is training-free (frozen SAM and DINOv2, no '
                           'trainable weights): evaluate it with tools/test.py CONFIG (no '
                           'checkpoint), its configs set train_dataloader=None')

    def extract_feat(self, batch_inputs: Tensor) -> Tensor:
        """(B, D, h, w) SAM embedding of the targets."""
        return self.backbone(batch_inputs)[-1]

    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList = None
                 ) -> Tuple[Tensor, Tensor]:
        """(SAM embedding (B, D, h, w), DINOv2 map of the padded inputs (B, C, g, g)) for
        ``mode='tensor'``."""
        return self.extract_feat(batch_inputs), self.feature_extractor(batch_inputs)

    # ------------------------------------------------------------------ references
    @torch.no_grad()
    def encode_references(self, refs: Sequence[dict], batch_size: int = 4,
                          scale: Optional[int] = None) -> Tuple[List[str], Tensor]:
        """DINOv2 features of references, each image read and preprocessed once.

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
            return [], torch.zeros(0, 1, self.feature_extractor.embed_dim)
        return [r['key'] for r in refs], torch.stack(out)
