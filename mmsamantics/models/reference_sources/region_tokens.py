"""Region tokens as a reference source: the encoder's own view of the reference box."""
from typing import Sequence

import torch
from torch import Tensor, nn

from mmdet.registry import MODELS
from ..layers.region_tokens import box_region_tokens, num_region_tokens
from .base import ReferenceSource, ReferenceView


@MODELS.register_module()
class RegionTokens(ReferenceSource):
    """The box average of each SAM encoder level, cut into D-wide tokens
    (:mod:`..layers.region_tokens`): colour and texture, which the mask tokens mostly drop
    (an addition to the paper's design)."""

    name = 'regions'

    def num_tokens(self, level_channels: Sequence[int], decoder: nn.Module) -> int:
        return num_region_tokens(list(level_channels), int(decoder.embed_dim))

    def forward(self, view: ReferenceView) -> Tensor:
        """(R, n, D) region tokens, the levels pooled in place (no per-box gather)."""
        idx = None if view.rows is None else torch.as_tensor(list(view.rows),
                                                             device=view.boxes.device)
        return box_region_tokens(view.levels, view.boxes, view.input_size,
                                 int(view.decoder.embed_dim), idx)
