"""The paper's reference tokens: SAM's output mask tokens for the reference box."""
from typing import Sequence

from torch import Tensor, nn

from mmdet.registry import MODELS
from ...structures import feature_rows
from .base import ReferenceSource, ReferenceView


@MODELS.register_module()
class SAMMaskTokens(ReferenceSource):
    """The T mask tokens of SAM's decoder prompted with the reference box (Espinosa et al.,
    §5.1: "the output tokens of the mask decoder", T = 4 for SAM)."""

    name = 'sam_tokens'

    def num_tokens(self, level_channels: Sequence[int], decoder: nn.Module) -> int:
        return int(decoder.num_mask_tokens)

    def forward(self, view: ReferenceView) -> Tensor:
        """(R, T, D) mask tokens; one decoder call for all R boxes."""
        emb = view.embedding if view.rows is None else feature_rows(view.embedding,
                                                                    list(view.rows))
        return view.decoder.mask_tokens(emb, view.boxes)
