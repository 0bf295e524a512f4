"""SAM 3's Perception Encoder for linear probing: ``vision_features`` mean-pooled, as for
SAM 2 (paper §4.1).

Shape shorthand: B batch, S input side (1008 full / 112 tiny), h = w = S / 14, D the neck
width (256; tiny 32).
"""
from typing import Optional

from mmpretrain.registry import MODELS
from torch import Tensor

from ..models.backbones.sam3_image_encoder import SAM3ImageEncoder
from .frozen_pooled_backbone import FrozenPooledBackbone


@MODELS.register_module()
class SAM3ProbeBackbone(FrozenPooledBackbone):
    """Frozen SAM 3 vision backbone; feature = mean over h x w of ``vision_features``.

    ``vision_features`` (B, D, h, w) is what ``sam3``'s image model hands its fusion
    encoder: the stride-14 level of the simple-FPN neck on the Perception Encoder, the
    counterpart of the features probed for SAM (neck embedding) and SAM 2
    (``vision_features``). The encoder is built and loaded by :class:`SAM3ImageEncoder`
    (same presets, strict loading of ``sam3.pt``). Inputs follow ``sam3``'s own
    preprocessing: resized to S x S, mean = std = 0.5 (``_base_/imagenet_sam3_1008.py``).

    Args:
        preset: ``full`` (the released SAM 3) or ``tiny`` (random weights).
        checkpoint: local path of ``sam3.pt``, or None (random).
        micro_batch: images per encoder call (0 = the whole batch at once).
    """

    def __init__(self,
                 preset: str = 'full',
                 checkpoint: Optional[str] = None,
                 micro_batch: int = 4,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(micro_batch=micro_batch, init_cfg=init_cfg)
        # out_levels=(): only vision_features is computed and returned
        self.encoder = SAM3ImageEncoder(preset=preset, checkpoint=checkpoint, out_levels=(),
                                        frozen=True)
        self.out_channels = self.encoder.out_channels[-1]
        self.img_size = self.encoder.img_size
        self._freeze()

    def pool(self, x: Tensor) -> Tensor:
        """Args: x (B, 3, S, S). Returns: (B, D) mean of ``vision_features``."""
        (feats, ) = self.encoder(x)  # (B, D, h, w)
        return feats.mean(dim=(2, 3))
