"""Identity "backbone" for training the linear head on cached features."""
from typing import Optional, Tuple

from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class CachedFeatureBackbone(BaseModule):
    """Passes pre-computed pooled features (B, C) through as ``((B, C),)``.

    With it, ``ImageClassifier`` + ``LinearClsHead`` trains on the output of
    :func:`~mmsamantics.probing.feature_cache.extract_features` exactly as it would on the
    frozen encoder's output (the encoder is frozen, so its features never change).

    Args:
        in_channels: C, checked against every batch so a cache of another encoder fails
            loudly instead of training a head of the wrong width.
    """

    def __init__(self, in_channels: int, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.out_channels = in_channels

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        """Args: x (B, C) cached features. Returns: ``((B, C),)``."""
        if x.dim() != 2 or x.shape[1] != self.out_channels:
            raise ValueError(f'cached features must be (B, {self.out_channels}), got '
                             f'{tuple(x.shape)}: the cache was written by another encoder; '
                             'rebuild it (tools/analysis/linear_probe.py --cache '
                             '--rebuild-cache).')
        return (x.float(), )
