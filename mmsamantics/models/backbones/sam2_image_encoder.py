"""Frozen SAM 2 image encoder (``sam2`` Hiera trunk + FpnNeck) as an mmdet backbone.

Shape shorthand: B batch, S input side (1024 real / 256 tiny), D the FPN / prompt width
(256; tiny 64), h = w = S / 16 the side of SAM 2's image embedding. The FPN has four levels,
``0..3`` at strides 4, 8, 16, 32 (sides 4h, 2h, h, h/2), all with D channels.

Ownership of SAM 2 weights outside ``image_encoder.*``: this module owns ``no_mem_embed``
(added to the stride-16 features, as ``SAM2ImagePredictor.set_image`` does for a single
image), while ``sam_mask_decoder.conv_s0`` / ``conv_s1`` (the projections of the high-res
features) stay in the mask decoder (:class:`SAM2PromptDecoder`), which applies them itself.
So this backbone returns raw FPN features and every ``sam_mask_decoder.*`` weight lives in
one module.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from sam2.modeling.backbones.hieradet import Hiera
from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
from sam2.modeling.position_encoding import PositionEmbeddingSine
from torch import Tensor, nn

from mmdet.registry import MODELS
from ...utils.checkpoint import load_state_dict_file, load_strict
from ...utils.frozen import freeze
from ..layers.precision import (check_frozen_autocast, frozen_autocast, micro_batched,
                                to_float)
from ..sam.sam2_presets import get_sam2_preset, sam2_checkpoint_hint
from .input_size import check_square_input

SAM2Embedding = Union[Tensor, Tuple[Tensor, Tensor, Tensor]]


@MODELS.register_module()
class SAM2ImageEncoder(BaseModule):
    """SAM 2's Hiera image encoder, frozen, returning FPN levels and the decoder's embedding.

    The input is preprocessed as for :class:`SAMImageEncoder` (RGB, SAM mean/std, longest
    side resized to ``img_size``, zero-padded bottom/right after normalisation). SAM 2's own
    predictor instead squashes the image to a square; the mask head crops the padding, so
    both give masks in original-image pixels.

    Args:
        preset: one of ``hiera_t``, ``hiera_s``, ``hiera_b+``, ``hiera_l``, ``tiny``.
        checkpoint: local path of an official SAM 2(.1) checkpoint (``image_encoder.*`` and
            ``no_mem_embed`` are loaded strictly, other keys ignored), or None for random
            weights.
        out_levels: FPN levels returned for the DETR neck (0..3 = strides 4, 8, 16, 32; the
            stride-32 level is computed by SAM 2's neck but dropped by its ``scalp=1``).
        frozen: keep every weight frozen (the paper's setting).
        preset_overrides: change preset fields (e.g. ``image_size``) for experiments.
        frozen_autocast: precision of the frozen encoder: ``'auto'`` (bf16 on GPUs, fp32 on
            the CPU), ``'bf16'`` or ``'off'``; features are returned as float32. (Hiera's
            attention already calls ``scaled_dot_product_attention``.)
        micro_batch: images per encoder call (0 = never split).

    Returns of ``forward``: ``(*level_feats, embedding)``: one (B, D, S/s, S/s) tensor per
    ``out_levels`` entry, then the embedding :class:`SAM2PromptDecoder` consumes: with
    ``use_high_res_features`` (all real presets) the tuple ``(image_embed (B, D, h, w),
    feat_s0 (B, D, 4h, 4w), feat_s1 (B, D, 2h, 2w))`` (raw FPN levels 0 and 1, before the
    decoder's ``conv_s0``/``conv_s1``), otherwise the (B, D, h, w) tensor alone.
    """

    def __init__(self,
                 preset: str = 'hiera_b+',
                 checkpoint: Optional[str] = None,
                 out_levels: Sequence[int] = (1, 2, 3),
                 frozen: bool = True,
                 preset_overrides: Optional[dict] = None,
                 frozen_autocast: str = 'auto',
                 micro_batch: int = 4,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        p = get_sam2_preset(preset, **(preset_overrides or {}))
        # read the file first: a missing checkpoint fails before building a 200M model
        state = (None if checkpoint is None
                 else load_state_dict_file(checkpoint, sam2_checkpoint_hint(preset)))
        d = p['d_model']
        self.preset = preset
        self.img_size = p['image_size']
        trunk = Hiera(embed_dim=p['embed_dim'], num_heads=p['num_heads'],
                      stages=tuple(p['stages']),
                      global_att_blocks=tuple(p['global_att_blocks']),
                      window_spec=tuple(p['window_spec']),
                      window_pos_embed_bkg_spatial_size=tuple(
                          p['window_pos_embed_bkg_spatial_size']))
        neck = FpnNeck(position_encoding=PositionEmbeddingSine(num_pos_feats=d, normalize=True,
                                                               temperature=10000),
                       d_model=d, backbone_channel_list=list(p['backbone_channel_list']),
                       fpn_top_down_levels=list(p['fpn_top_down_levels']),
                       fpn_interp_model=p['fpn_interp_model'])
        # named as in SAM2Base so the checkpoint keys map one to one
        self.image_encoder = ImageEncoder(trunk=trunk, neck=neck, scalp=p['scalp'])
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, d))
        nn.init.trunc_normal_(self.no_mem_embed, std=0.02)  # SAM2Base's init
        self.directly_add_no_mem_embed = p['directly_add_no_mem_embed']
        self.use_high_res_features = p['use_high_res_features']
        num_levels = len(p['backbone_channel_list'])
        self.out_levels = tuple(out_levels)
        if any(not 0 <= i < num_levels for i in self.out_levels):
            raise ValueError(f'out_levels {self.out_levels} out of range for {num_levels} '
                             'FPN levels (0..3 = strides 4, 8, 16, 32)')
        self.out_channels = [d] * len(self.out_levels) + [d]
        if state is not None:
            own = {k: v for k, v in state.items()
                   if k.startswith('image_encoder.') or k == 'no_mem_embed'}
            load_strict(self, own or state, source=checkpoint)
        self.frozen = frozen
        self.frozen_autocast = check_frozen_autocast(frozen_autocast)
        self.micro_batch = micro_batch
        if frozen:
            freeze(self)

    def train(self, mode: bool = True) -> 'SAM2ImageEncoder':
        super().train(mode)
        if self.frozen:
            self.image_encoder.eval()
        return self

    def forward(self, x: Tensor) -> Tuple[Union[Tensor, SAM2Embedding], ...]:
        """Args: x (B, 3, S, S). Returns ``(*level_feats (B, D, S/s, S/s), embedding)``."""
        check_square_input(x, self.img_size, f'SAM 2 {self.preset}')
        if not self.frozen:  # trained: the caller's precision, one call
            return self._forward(x)
        with frozen_autocast(self.frozen_autocast, x.device):
            return to_float(micro_batched(self._forward, x, self.micro_batch))

    def _forward(self, x: Tensor) -> Tuple[Union[Tensor, SAM2Embedding], ...]:
        with torch.set_grad_enabled(not self.frozen and torch.is_grad_enabled()):
            enc = self.image_encoder
            # trunk + neck directly (not enc.forward) to keep the level that scalp drops
            fpn, _ = enc.neck(enc.trunk(x))
            kept = fpn[:len(fpn) - enc.scalp]  # = ImageEncoder's backbone_fpn
            image_embed = kept[-1]
            if self.directly_add_no_mem_embed:
                image_embed = image_embed + self.no_mem_embed.view(1, -1, 1, 1)
            embedding = ((image_embed, *kept[-3:-1]) if self.use_high_res_features
                         else image_embed)
        return (*[fpn[i] for i in self.out_levels], embedding)
