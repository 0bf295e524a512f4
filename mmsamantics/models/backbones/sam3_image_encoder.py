"""Frozen SAM 3 vision backbone (``sam3``'s Perception Encoder ViT + simple FPN) as an mmdet
backbone.

SAM 3's image side is the Perception Encoder (Bolya et al., 2025), a ViT trained
contrastively on billions of image-text pairs, followed by a ViTDet-style simple-FPN neck
(Sapkota et al., "The SAM2-to-SAM3 gap", §3, "Vision-Language Encoders and PE Backbone").
This module is ``Sam3Image.backbone.vision_backbone`` alone, built by
:func:`~mmsamantics.models.sam3.build_sam3_vision_backbone`, so that SAM 3 can stand where
SAM and SAM 2 stand in the paper's analyses (linear probe, t-SNE, InSAM-DETR).

Shape shorthand: B batch, S input side (1008 full / 112 tiny / 224 toy), h = w = S / 14
the ViT's patch grid (72 / 8 / 16), D the neck width (256; tiny 32, toy 64). The neck has
four levels, ``0..3`` at scales 4, 2, 1, 1/2 of the patch grid (sides 4h, 2h, h, h/2;
strides 3.5, 7, 14, 28 px), all with D channels. ``sam3``'s image model drops level 3
(``SAM3VLBackbone(scalp=1)``) and reads level 2 as ``vision_features``. Its SAM 1-task
mask path (box prompts) reads a second neck of the same layout (``sam2_convs``), levels
0..2: ``embedding='interactive'`` returns those for
:class:`~mmsamantics.models.sam.SAM3PromptDecoder`.
"""
from typing import Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.registry import MODELS
from ...utils.checkpoint import load_state_dict_file, load_strict
from ...utils.frozen import freeze
from ..layers.precision import (check_frozen_autocast, frozen_autocast, micro_batched,
                                to_float)
from ..sam3.sam3_checkpoint import sam3_detector_state
from ..sam3.sam3_presets import (CKPT_URL, SAM3_PRESETS, build_sam3_vision_backbone,
                                 check_sam3_preset)
from .input_size import check_square_input

# the released checkpoint's keys of this module, after its ``detector.`` prefix
STATE_PREFIX = 'backbone.vision_backbone.'
# the SAM 2-style second neck of the interactive (SAM 1-task) predictor
SAM2_NECK = STATE_PREFIX + 'sam2_convs.'
VISION_FEATURES_LEVEL = 2  # the level sam3's detector reads (scale 1, stride 14)
# the second neck's levels the SAM 1-task decoder reads (scalp=1 drops level 3), returned as
# (image_embed, feat_s0, feat_s1): strides 14, 3.5, 7 px
INTERACTIVE_LEVELS = (2, 0, 1)
EMBEDDINGS = ('vision_features', 'interactive')


@MODELS.register_module()
class SAM3ImageEncoder(BaseModule):
    """SAM 3's vision backbone, frozen, returning neck levels and ``vision_features``.

    Inputs are preprocessed as ``sam3``'s own ``Sam3Processor`` does: RGB resized to
    S x S (aspect not kept) and normalised with mean = std = 0.5 (127.5 on 0..255). An
    input made the SAM way (longest side resized to S, zero-padded to S x S) is accepted
    too: t-SNE uses it, so that instance masks stay aligned with the features.

    Args:
        preset: ``full`` (the released SAM 3), ``tiny`` (tests) or ``toy`` (the toy world).
        checkpoint: local path of the released ``sam3.pt`` (the image detector's
            ``backbone.vision_backbone.*`` weights are loaded strictly; the text encoder,
            the detector and the tracker are ignored), or None for random weights.
        out_levels: neck levels returned for the DETR neck (0..3 = scales 4, 2, 1, 1/2 of
            the patch grid, strides 3.5, 7, 14, 28 px).
        embedding: what follows the levels: ``'vision_features'`` (level 2 of the
            detector's neck, for the probe and t-SNE) or ``'interactive'`` (the second neck's
            ``(image_embed, feat_s0, feat_s1)``, the input of SAM 3's box-prompted mask
            decoder :class:`~mmsamantics.models.sam.SAM3PromptDecoder`; InSAM-DETR).
        frozen: keep every weight frozen (the paper's setting).
        frozen_autocast: precision of the frozen encoder: ``'auto'`` (bf16 on GPUs, fp32 on
            the CPU), ``'bf16'`` or ``'off'``; features are returned as float32.
        micro_batch: images per encoder call (0 = never split).

    Returns of ``forward``: ``(*level_feats, embedding)``: one (B, D, S', S') tensor per
    ``out_levels`` entry, then ``vision_features`` (B, D, h, w), what ``sam3``'s
    ``SAM3VLBackbone.forward_image`` returns under that name, or the interactive tuple.
    """

    def __init__(self,
                 preset: str = 'full',
                 checkpoint: Optional[str] = None,
                 out_levels: Sequence[int] = (1, 2, 3),
                 embedding: str = 'vision_features',
                 frozen: bool = True,
                 frozen_autocast: str = 'auto',
                 micro_batch: int = 4,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        check_sam3_preset(preset)
        if embedding not in EMBEDDINGS:
            raise ValueError(f'embedding must be one of {EMBEDDINGS}, got {embedding!r}')
        # read the file first: a missing checkpoint fails before building a 450M model
        state = (None if checkpoint is None else sam3_detector_state(load_state_dict_file(
            checkpoint, f'Download sam3.pt from {CKPT_URL}.')))
        self.preset = preset
        self.img_size = SAM3_PRESETS[preset]['resolution']
        # named as in Sam3Image.backbone so the checkpoint keys map one to one
        self.embedding = embedding
        self.vision_backbone = build_sam3_vision_backbone(
            preset, interactive=embedding == 'interactive')
        num_levels = len(self.vision_backbone.convs)
        self.out_levels = tuple(out_levels)
        if any(not 0 <= i < num_levels for i in self.out_levels):
            raise ValueError(f'out_levels {self.out_levels} out of range for {num_levels} '
                             'neck levels (0..3 = scales 4, 2, 1, 1/2 of the patch grid)')
        d = self.vision_backbone.convs[0].conv_1x1.out_channels
        self.out_channels = [d] * (len(self.out_levels) + 1)
        if state is not None:
            own = {k: v for k, v in state.items()
                   if embedding == 'interactive' or not k.startswith(SAM2_NECK)}
            load_strict(self.vision_backbone, own, STATE_PREFIX, source=checkpoint)
        self.frozen = frozen
        self.frozen_autocast = check_frozen_autocast(frozen_autocast)
        self.micro_batch = micro_batch
        if frozen:
            freeze(self.vision_backbone)

    def train(self, mode: bool = True) -> 'SAM3ImageEncoder':
        super().train(mode)
        if self.frozen:
            self.vision_backbone.eval()
        return self

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Args: x (B, 3, S, S). Returns ``(*level_feats (B, D, S', S'), vision_features
        (B, D, h, w))`` or, interactive, ``(*level_feats, (image_embed (B, D, h, w),
        feat_s0 (B, D, 4h, 4w), feat_s1 (B, D, 2h, 2w)))``."""
        check_square_input(x, self.img_size, f'SAM 3 {self.preset}')
        if not self.frozen:  # trained: the caller's precision, one call
            return self._forward(x)
        with frozen_autocast(self.frozen_autocast, x.device):
            return to_float(micro_batched(self._forward, x, self.micro_batch))

    def _forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        with torch.set_grad_enabled(not self.frozen and torch.is_grad_enabled()):
            neck = self.vision_backbone
            # trunk + convs directly (not neck.forward): its position encodings, one
            # (B, D, 4h, 4w) tensor per level, are read by no consumer of this backbone
            top = neck.trunk(x)[-1]  # (B, C, h, w), the last global-attention block
            if self.embedding == 'interactive':
                feats = {i: neck.convs[i](top) for i in self.out_levels}
                last = tuple(neck.sam2_convs[i](top) for i in INTERACTIVE_LEVELS)
                return (*[feats[i] for i in self.out_levels], last)
            needed = sorted({*self.out_levels, VISION_FEATURES_LEVEL})
            feats = {i: neck.convs[i](top) for i in needed}
        return (*[feats[i] for i in self.out_levels], feats[VISION_FEATURES_LEVEL])
