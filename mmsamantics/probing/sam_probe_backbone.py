"""SAM's image encoder for linear probing: the neck embedding, mean-pooled (paper §4.1).

Shape shorthand: B batch, S input side (1024 real / 256 tiny), h = w = S / 16, D the neck
width (256; tiny 64).
"""
from typing import Optional

from mmpretrain.registry import MODELS
from torch import Tensor

from ..models.backbones.sam_image_encoder import SAMImageEncoder
from .frozen_pooled_backbone import FrozenPooledBackbone


@MODELS.register_module()
class SAMProbeBackbone(FrozenPooledBackbone):
    """Frozen SAM ViT encoder; feature = mean over h x w of the neck embedding (B, D, h, w).

    Reuses :class:`SAMImageEncoder` (same presets, same strict checkpoint loading). Inputs
    are SAM-preprocessed: RGB, SAM mean/std, longest side resized to S and zero-padded
    bottom/right after normalisation (``ClsDataPreprocessor(pad_size_divisor=S)``).

    Args:
        preset: ``vit_b`` / ``vit_l`` / ``vit_h`` / ``tiny``.
        checkpoint: local path of an official SAM checkpoint, or None for random weights.
        preset_overrides: change preset fields (e.g. ``img_size`` for the toy configs).
        micro_batch: images per encoder call (0 = the whole batch at once).
    """

    def __init__(self,
                 preset: str = 'vit_b',
                 checkpoint: Optional[str] = None,
                 preset_overrides: Optional[dict] = None,
                 micro_batch: int = 4,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(micro_batch=micro_batch, init_cfg=init_cfg)
        # out_indices=(): only the neck embedding is computed and returned
        self.encoder = SAMImageEncoder(preset=preset, checkpoint=checkpoint, out_indices=(),
                                       frozen=True, preset_overrides=preset_overrides)
        self.out_channels = self.encoder.out_channels[-1]
        self.img_size = self.encoder.img_size
        self._freeze()

    def pool(self, x: Tensor) -> Tensor:
        """Args: x (B, 3, S, S). Returns: (B, D) mean of the neck embedding."""
        (embedding, ) = self.encoder(x)  # (B, D, h, w)
        return embedding.mean(dim=(2, 3))
