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
from typing import List, Optional, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from ...structures.signature import preprocessing_parts
from ..layers.precision import fp32_region
from ..mask_heads.sam_box_prompt_mask_head import _image_slice
from .in_context_detector import InContextDetector
from .masked_references import MaskedReferencesMixin
from ..matching import (class_prototypes, cosine_scores, crop_region_features, grid_weights,
                        mask_nms, masks_to_boxes, weighted_token_average)

FEATURE_MODES = ('dense', 'crop')


@MODELS.register_module()
class SAMDINOv2Matcher(MaskedReferencesMixin, InContextDetector):
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
        reference_store: the reference bank (``tools/misc/encode_references.py``) and the
            in-memory cache, kept per feature mode (:class:`InContextDetector`).
        test_cfg: ``score_thr`` (min cosine, default -1 = keep all), ``nms_thr`` (class-wise
            mask-NMS IoU, 0.5), ``max_per_img`` (100), ``score_mode`` (``'cosine'``, the
            paper's; or ``'cosine_x_iou'``: times SAM's predicted IoU).
        data_preprocessor: :class:`InContextDataPreprocessor` (SAM's normalisation, which
            is also DINOv2's).
    """

    reference_kind = 'sam_dinov2_matcher'
    reference_needs_masks = True
    reference_made_with = 'DINOv2, feature mode or preprocessing'

    def __init__(self,
                 backbone: dict,
                 mask_head: dict,
                 feature_extractor: dict,
                 proposal_generator: dict,
                 feature_mode: str = 'dense',
                 crop_size: int = 224,
                 crop_batch_size: int = 32,
                 test_cfg: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 reference_store: Optional[dict] = None,
                 **legacy) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg,
                         reference_store=reference_store, **legacy)
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

    # ------------------------------------------------------------------ references
    def signature_parts(self) -> dict:
        """What reference features depend on: DINOv2 weights and input size, the feature
        mode (switchable: the cache is kept per mode) and the preprocessing."""
        parts = dict(kind='SAMDINOv2Matcher', mode=self.feature_mode, dense_region='valid',
                     crop=self.crop_size if self.feature_mode == 'crop' else None,
                     dinov2=self.fingerprint(self.feature_extractor),
                     dinov2_size=self.feature_extractor.img_size,
                     sam_size=self.backbone.img_size)
        return dict(parts, **preprocessing_parts(self.data_preprocessor))

    @property
    def reference_feature_shape(self) -> Tuple[int, ...]:
        """(1, C): one DINOv2 prototype per reference."""
        return (1, int(self.feature_extractor.embed_dim))

    def _reference_namespace(self) -> str:
        return self.feature_mode

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
        embedding = self.backbone(batch_inputs)[-1]
        refs = self.reference_features(batch_data_samples)
        results = []
        for i, ds in enumerate(batch_data_samples):
            meta = ds.metainfo
            ori = tuple(meta['ori_shape'][:2]) if rescale else tuple(meta['img_shape'][:2])
            props = self.proposal_generator(self.mask_head.decoder, _image_slice(embedding, i),
                                            tuple(meta['img_shape'][:2]))
            feats = self.region_features(batch_inputs[i:i + 1], props.masks,
                                         tuple(meta['img_shape'][:2]))
            with fp32_region(batch_inputs.device):
                keep, scores, labels = self.match(feats, props.iou_scores.float(),
                                                  props.masks, *refs[i])
            masks = self.mask_head.postprocess(props.logits[keep][:, None].float(),
                                               tuple(meta['img_shape'][:2]), ori)
            results.append(InstanceData(bboxes=masks_to_boxes(masks), scores=scores,
                                        labels=labels, masks=masks))
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
