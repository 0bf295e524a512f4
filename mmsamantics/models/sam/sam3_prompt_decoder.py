"""Frozen SAM 3 SAM 1-task prompt encoder + mask decoder: SAM 3's own box-prompted mask path.

SAM 3 segments a box (or points) on an image with the SAM 2-style decoder of its tracker,
read by its interactive image predictor (``sam3.model.sam1_task_predictor.
SAM3InteractiveImagePredictor``): the second ("SAM 2") neck of its vision backbone gives
three levels (strides 3.5, 7 and 14 px; 288, 144 and 72 px sides at 1008), the tracker's
``no_mem_embed`` is added to the coarsest (the "no memory" state of an image without video
context), and the finer two enter the mask upscaling through ``conv_s0`` / ``conv_s1``.

Everything downstream of the embedding is SAM 2's decoder (the same classes, copied into
``sam3.sam``), so this module is :class:`SAM2PromptDecoder` with SAM 3's parts and weights;
the embedding comes from :class:`~mmsamantics.models.backbones.SAM3ImageEncoder` with
``embedding='interactive'``: ``(image_embed (B, D, h, w), feat_s0 (B, D, 4h, 4w), feat_s1
(B, D, 2h, 2w))``, h = S / 14.
"""
from typing import Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet.registry import MODELS
from ...utils.checkpoint import load_state_dict_file, load_strict
from ...utils.frozen import freeze
from ..sam3.sam3_checkpoint import sam3_tracker_state
from ..sam3.sam3_presets import CKPT_URL, build_sam3_sam_heads, check_sam3_preset
from .sam2_prompt_decoder import SAM2PromptDecoder


@MODELS.register_module()
class SAM3PromptDecoder(SAM2PromptDecoder):
    """SAM 3's SAM 1-task ``PromptEncoder`` and ``MaskDecoder`` (``sam3.sam``), frozen.

    For the same weights, image and box, :meth:`predict_masks` gives the low-res logits of
    ``SAM3InteractiveImagePredictor.predict(box=..., multimask_output=False)`` (a box is
    its two corners with labels 2 and 3, as there; the single mask falls back to the best
    multimask output when unstable, as the released tracker is configured).

    Args:
        preset: ``full`` (the released SAM 3), ``tiny`` or ``toy``; must match the
            backbone's.
        checkpoint: local ``sam3.pt`` (or a checkpoint in its layout): the tracker's
            ``sam_prompt_encoder.*``, ``sam_mask_decoder.*`` and ``no_mem_embed`` are loaded
            strictly. None = random weights.
    """

    def __init__(self,
                 preset: str = 'full',
                 checkpoint: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        BaseModule.__init__(self, init_cfg=init_cfg)  # SAM 3's parts, not SAM 2's
        p = check_sam3_preset(preset)
        state = (None if checkpoint is None else sam3_tracker_state(load_state_dict_file(
            checkpoint, f'Download sam3.pt from {CKPT_URL}.')))
        self.prompt_encoder, self.mask_decoder = build_sam3_sam_heads(preset)
        self.embed_dim = int(self.mask_decoder.transformer_dim)
        self.img_size = p['resolution']
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, self.embed_dim))
        nn.init.trunc_normal_(self.no_mem_embed, std=0.02)  # as Sam3TrackerBase
        if state is not None:
            load_strict(self.prompt_encoder, state, 'sam_prompt_encoder.', source=checkpoint)
            load_strict(self.mask_decoder, state, 'sam_mask_decoder.', source=checkpoint)
            if 'no_mem_embed' not in state:
                raise RuntimeError(f'{checkpoint} has no tracker no_mem_embed: is it a SAM 3 '
                                   'checkpoint (sam3.pt)?')
            self.no_mem_embed.data.copy_(state['no_mem_embed'].reshape(1, 1, -1))
        freeze(self)

    def _image_embed(self, image_embed: Tensor) -> Tensor:
        """(B, D, h, w) + ``no_mem_embed`` on every position, as the predictor's
        ``set_image`` adds it to the flattened coarsest level."""
        return image_embed + self.no_mem_embed.reshape(1, -1, 1, 1).to(image_embed.dtype)
