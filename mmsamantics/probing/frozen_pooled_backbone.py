"""Base class of the linear-probe backbones: a frozen encoder that returns one pooled vector.

Shape shorthand: B batch, S input side, C the pooled feature width (SAM / SAM 2: 256, CLIP:
the image-embedding width, DINOv2: the ViT width).

Every probe backbone follows the project's frozen pattern (STYLE rule 5): weights frozen in
``__init__``, ``eval()`` kept through ``train()`` (dropout / drop-path stay off while the
linear head trains), and the forward pass under ``torch.no_grad()`` so no graph is kept for
an encoder nobody trains. The output is a one-element tuple ``((B, C),)``, the form
mmpretrain's ``ImageClassifier`` hands to ``LinearClsHead`` (which reads ``feats[-1]``).

A probe batch (128 images in the paper's runs) reaches the encoder ``micro_batch`` images at
a time: one SAM ViT-B global-attention logit tensor at 1024 px is 805 MB per image, so a
whole batch in one call would need tens of GB. The result is the same (eval mode, no batch
statistics).
"""
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor

from ..models.layers.precision import micro_batched
from ..utils.frozen import freeze


class FrozenPooledBackbone(BaseModule):
    """A frozen image encoder whose ``forward`` returns ``(pooled (B, C),)``.

    Subclasses build ``self.encoder`` (the frozen part), set ``self.out_channels`` (C) and
    ``self.img_size`` (S, or None when any size is accepted), then call
    :meth:`_freeze`; they implement :meth:`pool`.

    Args:
        micro_batch: images per encoder call (0 = the whole batch at once).
        init_cfg: mmengine init config (unused: the encoder keeps its weights).
    """

    out_channels: int
    img_size: Optional[int] = None

    def __init__(self, micro_batch: int = 4, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if micro_batch < 0:
            raise ValueError(f'micro_batch must be >= 0 (0 = no split), got {micro_batch}')
        self.micro_batch = micro_batch

    def _freeze(self) -> None:
        freeze(self)

    def init_weights(self) -> None:
        """Keep the (loaded or random) encoder weights: mmengine's ``init_weights`` would
        re-initialise modules that carry an ``init_cfg`` and a probe must never touch them."""

    def train(self, mode: bool = True) -> 'FrozenPooledBackbone':
        return super().train(False)  # frozen encoder: always eval, whatever ``mode``

    def pool(self, x: Tensor) -> Tensor:
        """Args: x (B, 3, S, S) preprocessed images. Returns: (B, C) pooled features."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        """Args: x (B, 3, S, S). Returns: ``((B, C),)``."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f'{type(self).__name__} expects images (B, 3, H, W), got '
                             f'{tuple(x.shape)}; cached features go through '
                             'CachedFeatureBackbone instead.')
        if self.img_size is not None and x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(
                f'{type(self).__name__} expects {self.img_size}x{self.img_size} inputs, got '
                f'{tuple(x.shape[-2:])}: resize the images to {self.img_size} (the probe '
                'configs do it in the pipeline, and pad to a square with the data '
                f'preprocessor\'s pad_size_divisor={self.img_size} for SAM / SAM 2).')
        with torch.no_grad():
            return (micro_batched(self.pool, x, self.micro_batch).float(), )
