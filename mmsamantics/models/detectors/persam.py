"""PerSAM: training-free one-shot segmentation with SAM's own features.

Re-implements Zhang et al., "Personalize Segment Anything Model with One Shot" (PerSAM, §2.2,
Fig. 4-6) on the plugin's frozen SAM, as a multi-class, multi-instance in-context detector
(the baseline that Matcher and SAMIC compare against):

    reference image + mask --SAM--> masked mean feature T_R (k shots: mean over shots)
    target image --SAM--> embedding --cosine with T_R--> location confidence map
        max -> positive point, min -> negative point                (location prior)
        SAM decoder with target-guided attention + target-semantic prompting
        --> mask; refined twice (mask prompt, then box + mask prompt) (cascaded refinement)
    more instances: suppress the prior under the found mask and repeat

PerSAM segments one object; several instances of a class come from repeating the prior
after suppressing each found mask (up to ``max_instances``, while the peak cosine exceeds
``score_thr``). A detection's score is its peak cosine (``score_mode='cosine_x_iou'``:
times SAM's predicted IoU). References are described as the matcher's are (the features
under their masks, :class:`MaskedReferencesMixin`), with SAM features instead of DINOv2's.

Shape shorthand: B targets, S SAM input side, D embedding width, h = w = S / 16, K queried
classes of a target, R references.
"""
from typing import List, Optional, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.structures import SampleList
from segment_anything.modeling.mask_decoder import MaskDecoder
from ...structures.signature import preprocessing_parts
from ..matching import (class_prototypes, grid_weights, mask_nms, masks_to_boxes,
                        weighted_token_average)
from ..persam import (attention_bias, cosine_map, guided_mask_decoder, input_prior,
                      negative_points, select_points)
from .in_context_detector import InContextDetector
from .masked_references import MaskedReferencesMixin

DEFAULT_TEST_CFG = dict(
    max_instances=5,         # prior-suppression rounds per class (PerSAM: 1 object)
    score_thr=0.0,           # stop a class when its peak cosine is not above this
    refine=True,             # the two cascaded post-refinement steps
    refine_multimask=True,   # refinements pick the best of SAM's 3 masks (paper)
    guided_attention=True,   # target-guided attention in the first decoding
    semantic_prompt=True,    # target-semantic prompting in the first decoding
    score_mode='cosine',     # or 'cosine_x_iou'
    nms_thr=0.5,             # class-wise mask NMS
    max_per_img=100)


@MODELS.register_module()
class PerSAM(MaskedReferencesMixin, InContextDetector):
    """PerSAM as a training-free in-context detector (frozen SAM, nothing trained).

    Args:
        backbone: frozen :class:`SAMImageEncoder` (``out_indices=()``: neck embedding only).
        mask_head: :class:`SAMBoxPromptMaskHead` with a :class:`SAMPromptDecoder`; its
            decoder is prompted and its ``postprocess`` makes the final masks.
        test_cfg: overrides of ``DEFAULT_TEST_CFG``.
        data_preprocessor: :class:`InContextDataPreprocessor` (SAM's normalisation).
        reference_store: the reference bank (``tools/misc/encode_references.py``) and the
            in-memory cache (:class:`InContextDetector`).
    """

    reference_kind = 'persam'
    reference_needs_masks = True
    reference_made_with = 'SAM or preprocessing'

    def __init__(self,
                 backbone: dict,
                 mask_head: dict,
                 test_cfg: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 reference_store: Optional[dict] = None,
                 **legacy) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg,
                         reference_store=reference_store, **legacy)
        unknown = set(test_cfg or {}) - set(DEFAULT_TEST_CFG)
        if unknown:
            raise ValueError(f'unknown PerSAM test_cfg keys {sorted(unknown)}; known: '
                             f'{sorted(DEFAULT_TEST_CFG)}')
        self.test_cfg = dict(DEFAULT_TEST_CFG, **(test_cfg or {}))
        if self.test_cfg['score_mode'] not in ('cosine', 'cosine_x_iou'):
            raise ValueError("test_cfg.score_mode must be 'cosine' or 'cosine_x_iou'")
        self.backbone = MODELS.build(backbone)
        self.mask_head = MODELS.build(mask_head)
        if not isinstance(getattr(self.mask_head.decoder, 'mask_decoder', None), MaskDecoder):
            raise ValueError('PerSAM modulates SAM\'s own mask decoder: mask_head.decoder '
                             'must be a SAMPromptDecoder (segment_anything)')

    def signature_parts(self) -> dict:
        """The SAM image encoder's weights, its input size and the preprocessing."""
        return dict(kind='PerSAM', sam=self.fingerprint(self.backbone),
                    sam_size=self.backbone.img_size,
                    **preprocessing_parts(self.data_preprocessor))

    @property
    def reference_feature_shape(self) -> Tuple[int, ...]:
        """(1, D): one target embedding per reference."""
        return (1, self.embed_dim)

    @property
    def embed_dim(self) -> int:
        """D, the width of a target embedding (SAM's neck = decoder width)."""
        return int(self.mask_head.decoder.embed_dim)

    # ------------------------------------------------------------------ references
    def _encode_references(self, images: Tensor, masks: Tensor,
                           shapes: Optional[List[Tuple[int, int]]] = None) -> Tensor:
        """(R, 3, S, S) references and their (R, S, S) bool masks -> (R, D) target
        embeddings T_R: the mean SAM feature under each mask (token cells weighted by the
        fraction the mask covers)."""
        empty = (~masks.flatten(1).any(1)).nonzero()[:, 0].tolist()
        if empty:
            raise ValueError(f'references {empty} have an empty mask on their image (a box '
                             'outside its image?): give boxes/masks inside the reference image')
        embed = self.backbone(images)[-1]  # (R, D, h, w)
        weights = grid_weights(masks, embed.shape[-2:])
        return torch.cat([weighted_token_average(e, w[None]) for e, w in zip(embed, weights)])

    # ------------------------------------------------------------------ decoding
    def _decode(self, embed: Tensor, points: Tensor, labels: Tensor, boxes: Optional[Tensor],
                mask_input: Optional[Tensor], multimask: bool, bias: Optional[Tensor] = None,
                target: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """One SAM decoding of N prompts, keeping the best of K outputs: (N, 1, 4h, 4w)
        logits and (N,) IoU predictions."""
        pe = self.mask_head.decoder.prompt_encoder
        sparse, dense = pe(points=(points, labels), boxes=boxes, masks=mask_input)
        low, iou = guided_mask_decoder(self.mask_head.decoder.mask_decoder, embed,
                                       pe.get_dense_pe(), sparse, dense, multimask, bias,
                                       target)
        best = iou.argmax(1)
        ar = torch.arange(len(best), device=best.device)
        return low[ar, best][:, None], iou[ar, best]

    def segment_points(self, embed: Tensor, pos: Tensor, neg: Tensor, targets: Tensor,
                       bias: Optional[Tensor], valid: Tuple[int, int]
                       ) -> Tuple[Tensor, Tensor, Tensor]:
        """PerSAM's three decodings for N (positive, negative) point pairs of one image.

        Args:
            embed: (1, D, h, w). pos, neg: (N, 2) xy input pixels. targets: (N, D) target
            embeddings. bias: (N, 1, 1, h*w) attention weights or None. valid: (H_v, W_v).

        Returns:
            (logits (N, 1, 4h, 4w), IoU predictions (N,), masks (N, H_v, W_v) bool).
        """
        cfg = self.test_cfg
        points = torch.stack([pos, neg], 1)
        labels = torch.tensor([[1, 0]], device=pos.device).expand(len(pos), -1)
        target = targets[:, None] if cfg['semantic_prompt'] else None
        low, iou = self._decode(embed, points, labels, None, None, False,
                                bias if cfg['guided_attention'] else None, target)
        post = self.mask_head.postprocess
        if cfg['refine']:
            multi = cfg['refine_multimask']
            low, iou = self._decode(embed, points, labels, None, low, multi)
            masks = post(low, valid, valid)
            boxes = masks_to_boxes(masks)
            none = ~masks.flatten(1).any(1)  # nothing found: a one-cell box at the point
            cell = self.backbone.img_size / embed.shape[-1]
            boxes[none] = torch.cat([pos[none] - cell / 2, pos[none] + cell / 2], 1)
            low, iou = self._decode(embed, points, labels, boxes, low, multi)
        return low, iou, post(low, valid, valid)

    def segment_image(self, embed: Tensor, classes: Tensor, targets: Tensor,
                      valid: Tuple[int, int]) -> Tuple[Tensor, Tensor, Tensor]:
        """All instances of K classes in one image by repeated prior suppression.

        Returns:
            (logits (N, 1, 4h, 4w), scores (N,), labels (N,)) after the class-wise mask NMS,
            by decreasing score.
        """
        cfg = self.test_cfg
        side = self.backbone.img_size
        sim = cosine_map(embed[0], targets)  # (K, h, w)
        prior = input_prior(sim, side, valid)
        neg = negative_points(prior)
        suppressed = torch.zeros_like(prior, dtype=torch.bool)
        cell = max(1, round(side / sim.shape[-1]))
        logits, scores, labels, masks = [], [], [], []
        for _ in range(cfg['max_instances']):
            pos, peak = select_points(prior, suppressed)
            act = (peak > cfg['score_thr']).nonzero()[:, 0]
            if not len(act):
                break
            low_sup = grid_weights(suppressed[act], sim.shape[-2:]) > 0.5  # on the token grid
            s = torch.where(low_sup, sim[act].amin((1, 2), keepdim=True), sim[act])
            bias = attention_bias(s, valid, side)
            low, iou, m = self.segment_points(embed, pos[act], neg[act], targets[act], bias,
                                              valid)
            x, y = pos[act].long().unbind(1)
            for j, k in enumerate(act.tolist()):  # suppress the mask and the point's cell
                suppressed[k] |= m[j]
                suppressed[k, max(0, int(y[j]) - cell // 2):int(y[j]) + cell // 2 + 1,
                           max(0, int(x[j]) - cell // 2):int(x[j]) + cell // 2 + 1] = True
            score = peak[act] * (iou.clamp(0, 1) if cfg['score_mode'] == 'cosine_x_iou' else 1)
            keep = m.flatten(1).any(1)
            logits.append(low[keep])
            masks.append(m[keep])
            scores.append(score[keep])
            labels.append(classes[act][keep])
        if not logits:
            return sim.new_zeros(0, 1, 4 * sim.shape[-2], 4 * sim.shape[-1]), \
                sim.new_zeros(0), classes.new_zeros(0)
        logits, scores, labels = torch.cat(logits), torch.cat(scores), torch.cat(labels)
        keep = mask_nms(torch.cat(masks), scores, cfg['nms_thr'], labels)[:cfg['max_per_img']]
        return logits[keep], scores[keep], labels[keep]

    # ------------------------------------------------------------------ detection
    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Boxes and masks of every queried class (label = reference class) per target."""
        embedding = self.backbone(batch_inputs)[-1]
        refs = self.reference_features(batch_data_samples)
        results = []
        for i, ds in enumerate(batch_data_samples):
            meta = ds.metainfo
            valid = tuple(meta['img_shape'][:2])
            ori = tuple(meta['ori_shape'][:2]) if rescale else valid
            classes, targets = class_prototypes(refs[i][1], refs[i][0])  # k shots: the mean
            logits, scores, labels = self.segment_image(embedding[i:i + 1], classes, targets,
                                                        valid)
            masks = self.mask_head.postprocess(logits, valid, ori)
            results.append(InstanceData(bboxes=masks_to_boxes(masks), scores=scores,
                                        labels=labels, masks=masks))
        return self.add_pred_to_datasample(batch_data_samples, results)

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        raise RuntimeError('PerSAM is training-free (frozen SAM, no trainable weights): '
                           'evaluate it with tools/test.py CONFIG (no checkpoint)')

    def extract_feat(self, batch_inputs: Tensor) -> Tensor:
        """(B, D, h, w) SAM embedding of the targets."""
        return self.backbone(batch_inputs)[-1]

    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList = None) -> Tensor:
        """(B, D, h, w) SAM embedding of the targets (``mode='tensor'``)."""
        return self.extract_feat(batch_inputs)
