"""Frozen SAM prompt encoder + mask decoder, shared by the mask head and the reference tokens.

Shape shorthand: N prompts (boxes), D prompt width (256; tiny 64), h = w = S / 16 the
embedding side, M mask tokens (SAM: 4 = 1 single-mask + 3 multimask tokens).
"""
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from segment_anything.modeling import PromptEncoder, TwoWayTransformer
from torch import Tensor

from mmdet.registry import MODELS
from ...utils.checkpoint import load_state_dict_file, load_strict
from ...utils.frozen import freeze
from .presets import checkpoint_hint, get_preset
from .shared_image_mask_decoder import SharedImageMaskDecoder


@MODELS.register_module()
class SAMPromptDecoder(BaseModule):
    """SAM's ``PromptEncoder`` and ``MaskDecoder`` (from ``segment_anything``), frozen.

    Args:
        preset: SAM size preset (``vit_b`` / ``vit_l`` / ``vit_h`` / ``tiny``); the decoder is
            the same for the three real sizes, but each checkpoint has its own weights.
        checkpoint: local SAM checkpoint; ``prompt_encoder.*`` and ``mask_decoder.*`` keys are
            loaded strictly. None = random weights.
        preset_overrides: change preset fields (must match the backbone's).
    """

    def __init__(self,
                 preset: str = 'vit_b',
                 checkpoint: Optional[str] = None,
                 preset_overrides: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        p = get_preset(preset, **(preset_overrides or {}))
        d = p['prompt_embed_dim']
        side = p['img_size'] // p['patch_size']
        self.img_size = p['img_size']
        self.embed_dim = d
        self.prompt_encoder = PromptEncoder(
            embed_dim=d, image_embedding_size=(side, side),
            input_image_size=(p['img_size'], p['img_size']), mask_in_chans=16)
        # SAM's MaskDecoder, sharing the image side across prompts (same weights and keys)
        self.mask_decoder = SharedImageMaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=p['decoder_depth'], embedding_dim=d,
                                          mlp_dim=p['decoder_mlp_dim'],
                                          num_heads=p['decoder_num_heads']),
            transformer_dim=d, iou_head_depth=3,
            iou_head_hidden_dim=p['iou_head_hidden_dim'])
        if checkpoint is not None:
            state = load_state_dict_file(checkpoint, checkpoint_hint(preset))
            load_strict(self.prompt_encoder, state, 'prompt_encoder.', source=checkpoint)
            load_strict(self.mask_decoder, state, 'mask_decoder.', source=checkpoint)
        freeze(self)

    @property
    def num_mask_tokens(self) -> int:
        """M, the number of output mask tokens (4 for SAM)."""
        return self.mask_decoder.num_mask_tokens

    def train(self, mode: bool = True) -> 'SAMPromptDecoder':
        return super().train(False)  # frozen: always eval

    def _decode(self, image_embedding: Tensor, sparse: Tensor, dense: Tensor,
                multimask_output: Optional[bool]) -> Tuple[Tensor, Tensor]:
        """SAM's mask decoder on encoded prompts: (low-res logits, IoU predictions).

        ``multimask_output=None`` returns all M outputs (the single-mask token first), which
        SAM's decoder computes in any case: one pass instead of two for both kinds.
        """
        kwargs = dict(image_embeddings=image_embedding,
                      image_pe=self.prompt_encoder.get_dense_pe(),
                      sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense)
        if multimask_output is None:
            return self.mask_decoder.predict_masks(**kwargs)
        return self.mask_decoder(multimask_output=multimask_output, **kwargs)

    @torch.no_grad()
    def predict_masks(self, image_embedding: Tensor, boxes: Tensor,
                      multimask_output: bool = False) -> Tuple[Tensor, Tensor]:
        """Masks for N boxes on ONE image, in a single batched decoder call.

        Args:
            image_embedding: (1, D, h, w) SAM embedding of the image.
            boxes: (N, 4) xyxy boxes in model-input pixels (after the longest-side resize).
            multimask_output: return SAM's 3 multimask outputs instead of the single mask.

        Returns:
            (low_res_logits (N, K, 4h, 4w), iou_predictions (N, K)), K = 1 or 3.
        """
        sparse, dense = self.prompt_encoder(points=None, boxes=boxes, masks=None)
        return self._decode(image_embedding, sparse, dense, multimask_output)

    @torch.no_grad()
    def predict_point_masks(self, image_embedding: Tensor, points: Tensor,
                            point_labels: Optional[Tensor] = None,
                            multimask_output: Optional[bool] = True,
                            boxes: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Masks for N point prompts (each of P points) on ONE image, one batched call.

        Args:
            image_embedding: (1, D, h, w) SAM embedding of the image.
            points: (N, P, 2) xy coordinates in model-input pixels (after the resize).
            point_labels: (N, P) SAM labels (1 foreground, 0 background); default all 1.
            multimask_output: SAM's 3 multimask outputs (its advice for a single point)
                instead of the single mask; None: all 4 (single mask first).
            boxes: optional (N, 4) xyxy box per prompt in model-input pixels, decoded with
                its points (SAM's combined point + box prompt).

        Returns:
            (low_res_logits (N, K, 4h, 4w), iou_predictions (N, K)), K = 3, 1 or 4.
        """
        if points.dim() != 3 or points.shape[-1] != 2:
            raise ValueError(f'points must be (N, P, 2), got {tuple(points.shape)}')
        if point_labels is None:
            point_labels = torch.ones(points.shape[:2], dtype=torch.int, device=points.device)
        sparse, dense = self.prompt_encoder(points=(points, point_labels), boxes=boxes,
                                            masks=None)
        return self._decode(image_embedding, sparse, dense, multimask_output)

    @torch.no_grad()
    def mask_tokens(self, image_embeddings: Tensor, boxes: Tensor) -> Tensor:
        """The decoder's output mask tokens for one box per embedding (reference tokens).

        Runs the prompt encoder and the two-way transformer of the mask decoder exactly as
        ``MaskDecoder.predict_masks`` does, but with one image embedding per box (boxes of
        different reference images in one batch) and without the mask upscaling, which
        reference tokens do not need.

        Args:
            image_embeddings: (N, D, h, w), the embedding of each box's image.
            boxes: (N, 4) xyxy boxes in model-input pixels.

        Returns:
            (N, M, D) output mask tokens (the IoU token is dropped).
        """
        if image_embeddings.shape[0] != boxes.shape[0]:
            raise ValueError(f'{image_embeddings.shape[0]} embeddings for {boxes.shape[0]} boxes')
        md = self.mask_decoder
        sparse, dense = self.prompt_encoder(points=None, boxes=boxes, masks=None)
        out_tokens = torch.cat([md.iou_token.weight, md.mask_tokens.weight], dim=0)
        tokens = torch.cat([out_tokens.unsqueeze(0).expand(boxes.shape[0], -1, -1), sparse], 1)
        pos = self.prompt_encoder.get_dense_pe().expand(boxes.shape[0], -1, -1, -1)
        hs, _ = md.transformer(image_embeddings + dense, pos, tokens)
        return hs[:, 1:1 + md.num_mask_tokens]
