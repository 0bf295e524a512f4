"""Means and maxima over groups of rows, on the device: InSAM-DETR's k shots of a (target,
class) pair are averaged as tokens or embeddings, and the shape-aware head compares a
query's outline with the mean of the shots' outline embeddings or with its best shot.

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


def group_max(x: Tensor, inverse: Tensor, num_groups: int) -> Tensor:
    """(R, ...) rows -> (G, ...) elementwise maximum of the rows of each group (``inverse``
    (R,)); a group without rows is -inf."""
    out = x.new_full((num_groups, *x.shape[1:]), float('-inf'))
    index = inverse.view(-1, *[1] * (x.dim() - 1)).expand_as(x)
    return out.scatter_reduce_(0, index, x, reduce='amax', include_self=True)
