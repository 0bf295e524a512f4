"""Means over groups of rows, on the device: InSAM-DETR's k shots of a (target, class) pair
are averaged as tokens or embeddings, and the shape-aware head averages outline embeddings.

Shape shorthand: R rows, G groups.
"""
import torch
from torch import Tensor


def group_mean(x: Tensor, inverse: Tensor, num_groups: int) -> Tensor:
    """(R, ...) rows -> (G, ...) mean of the rows of each group (``inverse`` (R,)); a group
    without rows is 0."""
    sums = x.new_zeros(num_groups, *x.shape[1:]).index_add_(0, inverse, x)
    counts = torch.bincount(inverse, minlength=num_groups).clamp(min=1)
    return sums / counts.to(x.dtype).view(-1, *[1] * (x.dim() - 1))
