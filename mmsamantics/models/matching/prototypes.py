"""Masked average pooling of a dense feature map, class prototypes and cosine matching.

The training-free matcher (paper §6, after PerSAM / Matcher / InsDet) describes a region by
the average of the DINOv2 patch tokens that its mask covers, and a class by the mean of
its references' region features.

Shape shorthand: C feature width, g x g the token grid, N regions, H x W mask resolution,
R references, K classes.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def grid_weights(masks: Tensor, grid: Tuple[int, int]) -> Tensor:
    """Fraction of each token cell covered by each mask.

    Args:
        masks: (N, H, W) bool or float masks on the same canvas as the feature map
            (the feature map covers the whole canvas).
        grid: (g_h, g_w) token grid.

    Returns:
        (N, g_h, g_w) float weights in [0, 1] (area fractions; exact when H, W are
        multiples of the grid, an area-interpolation otherwise).
    """
    m = masks.float()[:, None]
    h, w = m.shape[-2:]
    if h % grid[0] == 0 and w % grid[1] == 0:
        out = F.avg_pool2d(m, (h // grid[0], w // grid[1]))
    else:
        out = F.adaptive_avg_pool2d(m, grid)
    return out[:, 0]


def weighted_token_average(feats: Tensor, weights: Tensor, eps: float = 1e-6) -> Tensor:
    """Weighted average of the tokens of one feature map for each region (all regions in
    one matrix product).

    Args:
        feats: (C, g_h, g_w) feature map.
        weights: (N, g_h, g_w) non-negative weights (e.g. :func:`grid_weights`).

    Returns:
        (N, C) region features; a region with zero total weight gets zeros.
    """
    w = weights.flatten(1).to(feats.dtype)
    f = feats.flatten(1)  # (C, g*g)
    return (w @ f.T) / w.sum(1, keepdim=True).clamp(min=eps)


def class_prototypes(ref_feats: Tensor, labels: Tensor) -> Tuple[Tensor, Tensor]:
    """One prototype per class: the mean of its references' region features.

    Args:
        ref_feats: (R, C) features of the references. labels: (R,) their classes.

    Returns:
        (classes (K,) sorted, prototypes (K, C)).
    """
    classes, inverse = labels.unique(sorted=True, return_inverse=True)
    protos = ref_feats.new_zeros(len(classes), ref_feats.shape[1])
    protos.index_add_(0, inverse, ref_feats)
    counts = torch.bincount(inverse, minlength=len(classes)).clamp(min=1)
    return classes, protos / counts[:, None].to(protos.dtype)


def cosine_scores(feats: Tensor, prototypes: Tensor) -> Tensor:
    """(N, C) x (K, C) -> (N, K) cosine similarities."""
    return F.normalize(feats, dim=1) @ F.normalize(prototypes, dim=1).T
