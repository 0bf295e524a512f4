"""Frozen SAM 2 prompt encoder + mask decoder, the SAM 2 counterpart of ``SAMPromptDecoder``.

Shape shorthand: N prompts (boxes or point sets), P points per prompt, D prompt width (256;
tiny 64), h = w = S / 16 the embedding side, M mask tokens (4 = 1 single-mask + 3 multimask
tokens).

The embedding comes from :class:`SAM2ImageEncoder`: ``(image_embed (B, D, h, w), feat_s0
(B, D, 4h, 4w), feat_s1 (B, D, 2h, 2w))`` with raw FPN features (``conv_s0``/``conv_s1``,
weights of the mask decoder, are applied here), or a (B, D, h, w) tensor when the preset
has no high-res features.

A box is encoded as ``SAM2ImagePredictor`` (and SAM 2's training / video code) does: its two
corners as points with labels 2 and 3, plus the padding "not a point" token that SAM 2's
prompt encoder appends when no ``boxes`` argument is given (3 sparse tokens, not 2).
"""
from typing import List, Optional, Tuple, Union

import torch
from mmengine.model import BaseModule
from sam2.modeling.sam.mask_decoder import MaskDecoder
from sam2.modeling.sam.prompt_encoder import PromptEncoder
from sam2.modeling.sam.transformer import TwoWayTransformer
from torch import Tensor

from mmdet.registry import MODELS
from ...utils.checkpoint import load_state_dict_file, load_strict
from ...utils.frozen import freeze
from .sam2_presets import get_sam2_preset, sam2_checkpoint_hint

SAM2Embedding = Union[Tensor, Tuple[Tensor, Tensor, Tensor]]


@MODELS.register_module()
class SAM2PromptDecoder(BaseModule):
    """SAM 2's ``PromptEncoder`` and ``MaskDecoder`` (from ``sam2.modeling.sam``), frozen.

    Args:
        preset: SAM 2 size preset (``hiera_t`` / ``hiera_s`` / ``hiera_b+`` / ``hiera_l`` /
            ``tiny``); must match the backbone's.
        checkpoint: local SAM 2(.1) checkpoint; ``sam_prompt_encoder.*`` and
            ``sam_mask_decoder.*`` keys are loaded strictly. None = random weights.
        preset_overrides: change preset fields (must match the backbone's).
    """

    def __init__(self,
                 preset: str = 'hiera_b+',
                 checkpoint: Optional[str] = None,
                 preset_overrides: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        p = get_sam2_preset(preset, **(preset_overrides or {}))
        state = (None if checkpoint is None
                 else load_state_dict_file(checkpoint, sam2_checkpoint_hint(preset)))
        d = p['d_model']
        side = p['image_size'] // p['backbone_stride']
        self.img_size = p['image_size']
        self.embed_dim = d
        self.prompt_encoder = PromptEncoder(
            embed_dim=d, image_embedding_size=(side, side),
            input_image_size=(p['image_size'], p['image_size']), mask_in_chans=16)
        self.mask_decoder = MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=p['decoder_depth'], embedding_dim=d,
                                          mlp_dim=p['decoder_mlp_dim'],
                                          num_heads=p['decoder_num_heads']),
            transformer_dim=d, iou_head_depth=3, iou_head_hidden_dim=p['iou_head_hidden_dim'],
            use_high_res_features=p['use_high_res_features'],
            iou_prediction_use_sigmoid=p['iou_prediction_use_sigmoid'],
            pred_obj_scores=p['pred_obj_scores'], pred_obj_scores_mlp=p['pred_obj_scores_mlp'],
            use_multimask_token_for_obj_ptr=p['use_multimask_token_for_obj_ptr'],
            dynamic_multimask_via_stability=p['dynamic_multimask_via_stability'],
            dynamic_multimask_stability_delta=p['dynamic_multimask_stability_delta'],
            dynamic_multimask_stability_thresh=p['dynamic_multimask_stability_thresh'])
        if state is not None:
            load_strict(self.prompt_encoder, state, 'sam_prompt_encoder.', source=checkpoint)
            load_strict(self.mask_decoder, state, 'sam_mask_decoder.', source=checkpoint)
        freeze(self)

    @property
    def num_mask_tokens(self) -> int:
        """M, the number of output mask tokens (4 for SAM 2)."""
        return self.mask_decoder.num_mask_tokens

    def train(self, mode: bool = True) -> 'SAM2PromptDecoder':
        return super().train(False)  # frozen: always eval

    def _prompts(self, boxes: Tensor) -> Tuple[Tensor, Tensor]:
        """(N, 4) xyxy boxes -> sparse (N, 3, D) and dense (N, D, h, w) prompt embeddings."""
        corners = boxes.reshape(-1, 2, 2)
        labels = torch.tensor([[2, 3]], dtype=torch.int, device=boxes.device)
        return self.prompt_encoder(points=(corners, labels.expand(len(boxes), -1)),
                                   boxes=None, masks=None)

    def _split(self, embedding: SAM2Embedding) -> Tuple[Tensor, Optional[List[Tensor]]]:
        """Image embedding and the projected high-res features ``[s0, s1]`` (or None)."""
        if isinstance(embedding, Tensor):
            if self.mask_decoder.use_high_res_features:
                raise ValueError(f'this {type(self).__name__} needs (image_embed, feat_s0, '
                                 'feat_s1) from its image encoder, got a single tensor')
            return self._image_embed(embedding), None
        image_embed, feat_s0, feat_s1 = embedding
        md = self.mask_decoder
        return self._image_embed(image_embed), [md.conv_s0(feat_s0), md.conv_s1(feat_s1)]

    def _image_embed(self, image_embed: Tensor) -> Tensor:
        """The image embedding as the mask decoder reads it (SAM 2: as it is)."""
        return image_embed

    @torch.no_grad()
    def predict_masks(self, image_embedding: SAM2Embedding, boxes: Tensor,
                      multimask_output: bool = False) -> Tuple[Tensor, Tensor]:
        """Masks for N boxes on ONE image, as ``SAM2ImagePredictor.predict(box=...)``.

        Args:
            image_embedding: the embedding of one image from :class:`SAM2ImageEncoder`
                (tensors with batch size 1).
            boxes: (N, 4) xyxy boxes in model-input pixels.
            multimask_output: return the 3 multimask outputs instead of the single mask
                (which, as in ``build_sam2``, falls back to the best multimask output when
                unstable if the preset's ``dynamic_multimask_via_stability`` is set).

        Returns:
            (low_res_logits (N, K, 4h, 4w), iou_predictions (N, K)), K = 1 or 3; logits are
            not clamped (the predictor clamps only the low-res copy it returns).
        """
        sparse, dense = self._prompts(boxes)
        return self._decode(image_embedding, sparse, dense, multimask_output)

    def _decode(self, image_embedding: SAM2Embedding, sparse: Tensor, dense: Tensor,
                multimask_output: bool) -> Tuple[Tensor, Tensor]:
        """SAM 2's mask decoder on N encoded prompts of ONE image: (logits, IoU)."""
        image_embed, high_res = self._split(image_embedding)
        masks, iou, _, _ = self.mask_decoder(
            image_embeddings=image_embed, image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            multimask_output=multimask_output, repeat_image=True,
            high_res_features=high_res)
        return masks, iou

    @torch.no_grad()
    def predict_point_masks(self, image_embedding: SAM2Embedding, points: Tensor,
                            point_labels: Optional[Tensor] = None,
                            multimask_output: bool = True) -> Tuple[Tensor, Tensor]:
        """Masks for N point prompts (each of P points) on ONE image, one batched call, as
        ``SAM2ImagePredictor.predict(point_coords=..., point_labels=...)``; the same call
        as :meth:`SAMPromptDecoder.predict_point_masks`, so point-prompting detectors
        (the matcher's grid proposals, SAMIC) run on SAM 2 unchanged.

        Args:
            image_embedding: the embedding of one image from :class:`SAM2ImageEncoder`.
            points: (N, P, 2) xy coordinates in model-input pixels.
            point_labels: (N, P) labels (1 foreground, 0 background); default all 1.
            multimask_output: the 3 multimask outputs (advised for a single point) instead
                of the single mask.

        Returns:
            (low_res_logits (N, K, 4h, 4w), iou_predictions (N, K)), K = 3 or 1; logits not
            clamped.
        """
        if points.dim() != 3 or points.shape[-1] != 2:
            raise ValueError(f'points must be (N, P, 2), got {tuple(points.shape)}')
        if point_labels is None:
            point_labels = torch.ones(points.shape[:2], dtype=torch.int, device=points.device)
        if point_labels.shape != points.shape[:2]:
            raise ValueError(f'point_labels must be (N, P) = {tuple(points.shape[:2])}, got '
                             f'{tuple(point_labels.shape)}')
        # as the predictor: no boxes argument, so the prompt encoder pads a "not a point"
        sparse, dense = self.prompt_encoder(points=(points, point_labels), boxes=None,
                                            masks=None)
        return self._decode(image_embedding, sparse, dense, multimask_output)

    @torch.no_grad()
    def mask_tokens(self, image_embeddings: SAM2Embedding, boxes: Tensor) -> Tensor:
        """The decoder's output mask tokens for one box per embedding (reference tokens).

        Same token layout as ``MaskDecoder.predict_masks`` (object-score token when
        ``pred_obj_scores``, IoU token, M mask tokens, then the prompt tokens); only the
        two-way transformer runs: the high-res features enter the mask upscaling alone, so
        they are not needed.

        Args:
            image_embeddings: the embedding of each box's image (batch N).
            boxes: (N, 4) xyxy boxes in model-input pixels.

        Returns:
            (N, M, D) output mask tokens (object-score and IoU tokens dropped).
        """
        image_embed = image_embeddings if isinstance(image_embeddings, Tensor) \
            else image_embeddings[0]
        if image_embed.shape[0] != boxes.shape[0]:
            raise ValueError(f'{image_embed.shape[0]} embeddings for {boxes.shape[0]} boxes')
        md = self.mask_decoder
        sparse, dense = self._prompts(boxes)
        lead = [md.obj_score_token.weight] if md.pred_obj_scores else []
        out_tokens = torch.cat([*lead, md.iou_token.weight, md.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens.unsqueeze(0).expand(len(boxes), -1, -1), sparse], 1)
        pos = self.prompt_encoder.get_dense_pe().expand(len(boxes), -1, -1, -1)
        hs, _ = md.transformer(self._image_embed(image_embed) + dense, pos, tokens)
        s = len(lead) + 1
        return hs[:, s:s + md.num_mask_tokens]
