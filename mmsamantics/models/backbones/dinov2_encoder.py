"""Frozen DINOv2 ViT (from timm) returning its dense patch-token map, for feature matching.

Shape shorthand: B batch, S the DINOv2 input side (a multiple of 14; 518 real, 224 tiny),
g = S / 14 the token grid side, C the ViT width (384 / 768 / 1024 / 1536; tiny 96).

Oquab et al., "DINOv2: Learning Robust Visual Features without Supervision" (2023). The
model is timm's ``vit_*_patch14_dinov2`` built with ``pretrained=False``; weights come from a
LOCAL file: timm's (``timm/vit_large_patch14_dinov2.lvd142m``) or the official
``dinov2_vitl14_pretrain.pth`` (timm's ``checkpoint_filter_fn`` converts its keys).
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.registry import MODELS
from ...utils.checkpoint import load_state_dict_file, load_strict
from ...utils.frozen import freeze
from ..layers.precision import check_frozen_autocast, frozen_autocast, micro_batched

DINOV2_MODELS = {  # preset -> (timm model name, timm kwargs overrides)
    'vit_s14': ('vit_small_patch14_dinov2', {}),
    'vit_b14': ('vit_base_patch14_dinov2', {}),
    'vit_l14': ('vit_large_patch14_dinov2', {}),
    'vit_g14': ('vit_giant_patch14_dinov2', {}),
    # random-weight preset for tests and the toy world (CPU)
    'tiny': ('vit_small_patch14_dinov2', dict(embed_dim=96, depth=4, num_heads=3)),
}
DINOV2_CHECKPOINT_URLS = {
    'vit_s14': 'https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth',
    'vit_b14': 'https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth',
    'vit_l14': 'https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth',
    'vit_g14': 'https://dl.fbaipublicfiles.com/dinov2/dinov2_vitg14/dinov2_vitg14_pretrain.pth',
}


@MODELS.register_module()
class DINOv2Encoder(BaseModule):
    """DINOv2 image encoder, frozen; ``forward`` returns the normalised patch-token map.

    Inputs are SAM-preprocessed tensors (RGB, ImageNet mean/std, which SAM shares with
    DINOv2, zero-padded after normalisation); they are resized to ``img_size`` here, so one
    data preprocessor serves SAM and DINOv2.

    Args:
        preset: ``vit_s14`` / ``vit_b14`` / ``vit_l14`` / ``vit_g14`` / ``tiny``.
        checkpoint: local weights file (timm or official DINOv2 layout), loaded strictly;
            None = random weights.
        img_size: S, the side inputs are resized to (multiple of 14). 518 = DINOv2's
            training resolution (37 x 37 tokens).
        timm_kwargs: extra ``timm.create_model`` arguments (override the preset's).
        random_seed: seed of the random initialisation (used without a checkpoint), so
            random-weight runs in different processes share weights, and a reference bank
            made by one is valid in the other.
        frozen_autocast: ``'auto'`` (bf16 on GPUs, fp32 on the CPU), ``'bf16'`` or
            ``'off'``; tokens are returned as float32 (timm's attention already calls
            ``scaled_dot_product_attention``).
        micro_batch: images per call (0 = never split).
    """

    def __init__(self,
                 preset: str = 'vit_l14',
                 checkpoint: Optional[str] = None,
                 img_size: int = 518,
                 timm_kwargs: Optional[dict] = None,
                 random_seed: int = 0,
                 frozen_autocast: str = 'auto',
                 micro_batch: int = 4,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        import timm
        if preset not in DINOV2_MODELS:
            raise KeyError(f'unknown DINOv2 preset {preset!r}; choose one of '
                           f'{sorted(DINOV2_MODELS)}')
        if img_size % 14:
            raise ValueError(f'img_size must be a multiple of the patch size 14, got {img_size}')
        name, kwargs = DINOV2_MODELS[preset]
        kwargs = dict(kwargs, **(timm_kwargs or {}))
        self.preset = preset
        self.img_size = img_size
        with torch.random.fork_rng(devices=[]):  # leave the caller's RNG untouched
            torch.manual_seed(random_seed)
            self.vit = timm.create_model(name, pretrained=False, img_size=img_size,
                                         dynamic_img_size=True, num_classes=0, **kwargs)
        self.embed_dim = self.vit.embed_dim
        self.frozen_autocast = check_frozen_autocast(frozen_autocast)
        self.micro_batch = micro_batch
        if checkpoint is not None:
            self._load(checkpoint)
        freeze(self.vit)

    def _load(self, path: str) -> None:
        from timm.models.vision_transformer import checkpoint_filter_fn
        url = DINOV2_CHECKPOINT_URLS.get(self.preset)
        hint = (f'Download the official DINOv2 {self.preset} weights from {url} (or timm\'s '
                'vit_*_patch14_dinov2.lvd142m) and point the config\'s `dinov2_checkpoint` '
                'at the file.' if url else
                'The tiny preset has no released weights: make the toy DINOv2 with '
                '`python tools/misc/pretrain_toy_dinov2.py`, or set checkpoint=None.')
        state = load_state_dict_file(path, hint)
        if isinstance(state.get('teacher'), dict):  # DINOv2 training checkpoints
            state = state['teacher']
        # official DINOv2 key names -> timm's (no-op for timm files)
        load_strict(self.vit, checkpoint_filter_fn(state, self.vit), source=path)

    def init_weights(self) -> None:
        """No-op: the weights are final once built (checkpoint or seeded random init).

        mmengine's ``BaseModule.init_weights`` (called by the Runner) would otherwise call
        timm's ``VisionTransformer.init_weights`` and overwrite the loaded DINOv2 weights.
        """

    def train(self, mode: bool = True) -> 'DINOv2Encoder':
        return super().train(False)  # frozen: always eval

    @property
    def grid_size(self) -> int:
        """g, the side of the token grid for an ``img_size`` input."""
        return self.img_size // 14

    def input_size(self, height: int, width: int) -> Tuple[int, int]:
        """DINOv2 input (S_h, S_w) for a (height, width) region: the longest side becomes
        ``img_size`` and the other keeps the aspect ratio, both multiples of 14."""
        scale = self.img_size / max(height, width)
        return (max(14, round(height * scale / 14) * 14),
                max(14, round(width * scale / 14) * 14))

    @torch.no_grad()
    def forward(self, x: Tensor, size: Optional[Tuple[int, int]] = None) -> Tensor:
        """Args:
            x: (B, 3, H, W) normalised images (any size; resized to ``size``).
            size: (S_h, S_w) input size, multiples of 14; default (img_size, img_size).

        Returns:
            (B, C, S_h / 14, S_w / 14) patch tokens after DINOv2's final norm.
        """
        size = tuple(size or (self.img_size, self.img_size))
        if x.shape[-2:] != size:
            x = F.interpolate(x, size, mode='bilinear', align_corners=False, antialias=True)
        with frozen_autocast(self.frozen_autocast, x.device):
            tokens = micro_batched(self.vit.forward_features, x, self.micro_batch)
        tokens = tokens[:, self.vit.num_prefix_tokens:].float()
        b, _, c = tokens.shape
        return tokens.transpose(1, 2).reshape(b, c, size[0] // 14, size[1] // 14)
