"""A value projection that runs once per image when the decoder's memory is repeated per pair.

InSAM-DETR decodes each (target, reference class) pair separately, so the encoder memory of
a target is repeated P_i times before the decoder. Every decoder layer's deformable
cross-attention starts with ``value = value_proj(memory)``: on the repeated memory that is
the same matrix product P_i times (for ViT-B geometry: 16,384 tokens x 256 x 256 per pair
and layer). Projecting each image once and indexing the result is exactly equal (the rows
are identical) and lets autograd sum the pairs' gradients as before.
"""
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class PairIndex:
    """Which rows of a (P, N, C) batch are copies of which image: set per forward.

    Attributes:
        first: (U,) row of the first pair of each distinct image.
        inverse: (P,) position in ``first`` of each pair's image.
    """

    def __init__(self) -> None:
        self.first: Optional[Tensor] = None
        self.inverse: Optional[Tensor] = None

    def set(self, img_idx: Tensor) -> None:
        uniq, inverse = img_idx.unique(sorted=True, return_inverse=True)
        pos = img_idx.new_full((len(uniq),), len(img_idx))
        rows = torch.arange(len(img_idx), device=img_idx.device)
        self.first = pos.scatter_reduce(0, inverse, rows, reduce='amin')
        self.inverse = inverse

    def clear(self) -> None:
        self.first = self.inverse = None


class PairSharedLinear(nn.Linear):
    """``nn.Linear`` (same parameters and state-dict keys) that projects repeated rows once.

    While its :class:`PairIndex` is set and the input is (P, N, C) with P pairs, the output
    equals ``linear(x)`` but is computed as ``linear(x[first])[inverse]``.
    """

    def __init__(self, in_features: int, out_features: int, index: PairIndex,
                 bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        self._index: List[PairIndex] = [index]  # a list: not a registered submodule

    @classmethod
    def replace(cls, linear: nn.Linear, index: PairIndex) -> 'PairSharedLinear':
        new = cls(linear.in_features, linear.out_features, index, linear.bias is not None)
        new.load_state_dict(linear.state_dict())
        return new.to(linear.weight.device)

    def forward(self, x: Tensor) -> Tensor:
        idx = self._index[0]
        if idx.inverse is not None and x.dim() == 3 and x.shape[0] == len(idx.inverse):
            return F.linear(x[idx.first], self.weight, self.bias)[idx.inverse]
        return super().forward(x)
