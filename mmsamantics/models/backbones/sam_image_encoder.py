"""Frozen SAM image encoder (``segment_anything.modeling.ImageEncoderViT``) as an mmdet backbone.

Shape shorthand: B batch, S input side (1024 real / 256 tiny), h = w = S / 16,
C the ViT width (768 / 1024 / 1280 / 96), D the prompt width (256, tiny 64).

HQ-SAM (``segment_anything_hq``, Ke et al., "Segment Anything in High Quality") keeps SAM's
image encoder unchanged (its checkpoints' ``image_encoder.*`` keys are plain SAM's) and only
feeds its mask decoder one more input: the output of the first global-attention block.
``hq_interm=True`` returns it alongside the embedding for :class:`HQSAMPromptDecoder`.
"""
from functools import partial
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from segment_anything.modeling import ImageEncoderViT
from torch import Tensor, nn

from mmdet.registry import MODELS
from ...utils.checkpoint import load_state_dict_file, load_strict
from ...utils.frozen import freeze
from ..layers.precision import (check_frozen_autocast, frozen_autocast, micro_batched,
                                to_float)
from ..sam.hq_sam_prompt_decoder import hq_checkpoint_hint
from ..sam.presets import checkpoint_hint, get_preset
from .input_size import check_square_input
from .sam_vit_attention import SDPAAttention

# SAM: (B, D, h, w); HQ-SAM: (embedding (B, D, h, w), interm (B, h, w, C))
SAMEmbedding = Union[Tensor, Tuple[Tensor, Tensor]]


@MODELS.register_module()
class SAMImageEncoder(BaseModule):
    """SAM's ViT image encoder, frozen, returning multi-level features and the neck embedding.

    The input must already be SAM-preprocessed: RGB, normalised with SAM's mean/std, longest
    side resized to ``img_size`` and zero-padded bottom/right AFTER normalisation to a square
    ``img_size`` x ``img_size`` (``InContextDataPreprocessor`` does this).

    Args:
        preset: one of ``vit_b``, ``vit_l``, ``vit_h``, ``tiny``.
        checkpoint: local path of an official SAM or HQ-SAM checkpoint (the
            ``image_encoder.*`` keys are loaded strictly, other keys ignored), or None for
            random weights.
        out_indices: ViT blocks whose outputs are returned; default: the preset's
            global-attention blocks (vit_b: 2, 5, 8, 11).
        frozen: keep every weight frozen (the paper's setting).
        preset_overrides: change preset fields (e.g. ``img_size``) for experiments.
        hq_interm: also return the early ViT feature HQ-SAM's decoder needs (see Returns);
            False (default) keeps plain SAM's output.
        attention: ``'sdpa'`` (default: one fused ``scaled_dot_product_attention`` call per
            block, :class:`SDPAAttention`) or ``'explicit'`` (``segment_anything``'s
            matmul-softmax-matmul); equal to float rounding.
        frozen_autocast: precision of the frozen encoder: ``'auto'`` (bf16 on GPUs, fp32 on
            the CPU), ``'bf16'`` or ``'off'``; features are returned as float32.
        micro_batch: images per encoder call (a larger batch is split; 0 = never split),
            bounding the attention memory of one call.

    Returns of ``forward``: a tuple ``(*block_feats, embedding)``: ``len(out_indices)``
    tensors (B, C, h, w), then what SAM's decoder consumes: the neck embedding (B, D, h, w),
    or with ``hq_interm`` the tuple ``(embedding (B, D, h, w), interm (B, h, w, C))``, where
    ``interm`` is the output of the first global-attention block, channels-last, exactly
    ``interm_embeddings[0]`` of ``segment_anything_hq``'s ``ImageEncoderViT``.
    """

    def __init__(self,
                 preset: str = 'vit_b',
                 checkpoint: Optional[str] = None,
                 out_indices: Optional[Sequence[int]] = None,
                 frozen: bool = True,
                 preset_overrides: Optional[dict] = None,
                 hq_interm: bool = False,
                 attention: str = 'sdpa',
                 frozen_autocast: str = 'auto',
                 micro_batch: int = 4,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        p = get_preset(preset, **(preset_overrides or {}))
        self.preset = preset
        self.hq_interm = hq_interm
        self.img_size = p['img_size']
        self.encoder = ImageEncoderViT(
            img_size=p['img_size'], patch_size=p['patch_size'], embed_dim=p['embed_dim'],
            depth=p['depth'], num_heads=p['num_heads'], mlp_ratio=4,
            out_chans=p['prompt_embed_dim'], qkv_bias=True,
            norm_layer=partial(nn.LayerNorm, eps=1e-6), use_rel_pos=True,
            global_attn_indexes=tuple(p['global_attn_indexes']),
            window_size=p['window_size'])
        self.out_indices = tuple(p['global_attn_indexes'] if out_indices is None
                                 else out_indices)
        if any(not 0 <= i < p['depth'] for i in self.out_indices):
            raise ValueError(f'out_indices {self.out_indices} out of range for '
                             f'{p["depth"]} blocks')
        self.out_channels = [p['embed_dim']] * len(self.out_indices) + [p['prompt_embed_dim']]
        if hq_interm and not any(b.window_size == 0 for b in self.encoder.blocks):
            raise ValueError(f'hq_interm needs a global-attention block; preset {preset!r} '
                             'has none (global_attn_indexes is empty)')
        if checkpoint is not None:
            hint = hq_checkpoint_hint(preset) if hq_interm else checkpoint_hint(preset)
            state = load_state_dict_file(checkpoint, hint)
            load_strict(self.encoder, state, 'image_encoder.', source=checkpoint)
        SDPAAttention.convert(self.encoder, attention)
        self.frozen = frozen
        self.frozen_autocast = check_frozen_autocast(frozen_autocast)
        self.micro_batch = micro_batch
        if frozen:
            freeze(self.encoder)

    def train(self, mode: bool = True) -> 'SAMImageEncoder':
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def forward(self, x: Tensor) -> Tuple[SAMEmbedding, ...]:
        """Args: x (B, 3, S, S). Returns ``(*block_feats (B, C, h, w), embedding)``, the
        embedding being (B, D, h, w), or ``(embedding, interm (B, h, w, C))`` with
        ``hq_interm``."""
        check_square_input(x, self.img_size, f'SAM {self.preset}')
        if not self.frozen:  # trained: the caller's precision, one call
            return self._forward(x)
        with frozen_autocast(self.frozen_autocast, x.device):
            return to_float(micro_batched(self._forward, x, self.micro_batch))

    def _forward(self, x: Tensor) -> Tuple[SAMEmbedding, ...]:
        with torch.set_grad_enabled(not self.frozen and torch.is_grad_enabled()):
            enc = self.encoder
            h = enc.patch_embed(x)  # (B, h, w, C)
            if enc.pos_embed is not None:
                h = h + enc.pos_embed
            outs, interm = [], None
            for i, blk in enumerate(enc.blocks):
                h = blk(h)
                if i in self.out_indices:
                    outs.append(h.permute(0, 3, 1, 2).contiguous())
                # HQ-SAM's rule for its interm_embeddings: global blocks have window_size 0
                if self.hq_interm and interm is None and blk.window_size == 0:
                    interm = h
            embedding = enc.neck(h.permute(0, 3, 1, 2))
        if self.hq_interm:
            return (*outs, (embedding, interm))
        return (*outs, embedding)
