"""SAM 2's Hiera image encoder for linear probing: ``vision_features`` mean-pooled (§4.1).

Shape shorthand: B batch, S input side (1024 real / 256 tiny), h = w = S / 16, D the FPN
width (256; tiny 64).
"""
from typing import Optional

from mmpretrain.registry import MODELS
from torch import Tensor

from ..models.backbones.sam2_image_encoder import SAM2ImageEncoder
from .frozen_pooled_backbone import FrozenPooledBackbone


@MODELS.register_module()
class SAM2ProbeBackbone(FrozenPooledBackbone):
    """Frozen SAM 2 encoder; feature = mean over h x w of ``vision_features`` (B, D, h, w).

    ``vision_features`` is what ``sam2``'s ``ImageEncoder`` returns under that name: the
    stride-16 FPN level, before SAM 2 adds its ``no_mem_embed`` for single images (a
    constant shift, which a linear probe's bias absorbs anyway). The encoder is built and
    loaded by :class:`SAM2ImageEncoder` (same presets, strict checkpoint loading).

    Args:
        preset: ``hiera_t`` / ``hiera_s`` / ``hiera_b+`` / ``hiera_l`` / ``tiny``.
        checkpoint: local path of an official SAM 2(.1) checkpoint, or None (random).
        preset_overrides: change preset fields (e.g. ``image_size``).
        micro_batch: images per encoder call (0 = the whole batch at once).
    """

    def __init__(self,
                 preset: str = 'hiera_b+',
                 checkpoint: Optional[str] = None,
                 preset_overrides: Optional[dict] = None,
                 micro_batch: int = 4,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(micro_batch=micro_batch, init_cfg=init_cfg)
        self.encoder = SAM2ImageEncoder(preset=preset, checkpoint=checkpoint, out_levels=(),
                                        frozen=True, preset_overrides=preset_overrides)
        self.out_channels = self.encoder.out_channels[-1]
        self.img_size = self.encoder.img_size
        self._freeze()

    def pool(self, x: Tensor) -> Tensor:
        """Args: x (B, 3, S, S). Returns: (B, D) mean of ``vision_features``."""
        feats = self.encoder.image_encoder(x)['vision_features']  # (B, D, h, w)
        return feats.mean(dim=(2, 3))
