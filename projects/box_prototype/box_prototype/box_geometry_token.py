"""A new reference source: one token that tells InSAM-DETR the size and shape of the box.

SAM's mask tokens (the paper's reference) are made from a box prompt but hold little of the
box's geometry. This source adds one D-wide token: the box's log width, log height and log
aspect ratio (relative to SAM's input side), repeated over the token's width.
"""
from typing import Sequence

import torch
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmsamantics.models.reference_sources import ReferenceSource, ReferenceView


@MODELS.register_module()
class BoxGeometryToken(ReferenceSource):
    """(R, 1, D) tokens of the boxes' log width, height and aspect ratio."""

    name = 'box_geometry'  # enters the detector's signature: banks of other sources differ

    def num_tokens(self, level_channels: Sequence[int], decoder: nn.Module) -> int:
        return 1

    def forward(self, view: ReferenceView) -> Tensor:
        wh = (view.boxes[:, 2:] - view.boxes[:, :2]).clamp(min=1.0) / view.input_size
        feats = torch.stack([wh[:, 0].log(), wh[:, 1].log(), (wh[:, 0] / wh[:, 1]).log()], 1)
        width = int(view.decoder.embed_dim)
        return feats.repeat(1, -(-width // 3))[:, None, :width]
