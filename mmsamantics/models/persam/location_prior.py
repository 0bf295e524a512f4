"""PerSAM's target-guided location prior (Zhang et al., PerSAM §2.2, "Positive-negative
Location Prior" and "Target-guided Attention").

The reference's target embedding T_R (its masked mean SAM feature) is compared by cosine
similarity with every feature of the target image's SAM embedding: the confidence map. Its
maximum is the positive point prompt, its minimum the negative one; standardised and passed
through a sigmoid it re-weights the decoder's token-to-image attention.

Where the authors' code works at the original image resolution and resizes the map to the
64 x 64 token grid for the attention (stretching a non-square image over the padded grid),
here the map is upsampled to the model input and cropped to the image (points in input
pixels), and the attention weights are computed on the token grid itself (aligned with the
tokens; padding tokens get the lowest weight).

Shape shorthand: K classes, D SAM embedding width, h x w the token grid, S the input side,
(H_v, W_v) the image's valid (unpadded) size in input pixels.
"""
import math
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def cosine_map(embedding: Tensor, targets: Tensor) -> Tensor:
    """Location confidence maps.

    Args:
        embedding: (D, h, w) SAM embedding of one target image.
        targets: (K, D) target embeddings (one per class).

    Returns:
        (K, h, w) cosine similarities.
    """
    feats = F.normalize(embedding.flatten(1), dim=0)  # (D, h*w)
    return (F.normalize(targets, dim=1) @ feats).view(len(targets), *embedding.shape[-2:])


def input_prior(sim: Tensor, side: int, valid: Tuple[int, int]) -> Tensor:
    """(K, h, w) maps -> (K, H_v, W_v) on the input pixels of the image (bilinear, x4 then
    to S x S as SAM upsamples its low-res masks; the padding is cropped off)."""
    up = F.interpolate(sim[None], scale_factor=4, mode='bilinear', align_corners=False)
    up = F.interpolate(up, (side, side), mode='bilinear', align_corners=False)
    return up[0, :, :valid[0], :valid[1]]


def select_points(prior: Tensor, suppressed: Tensor) -> Tuple[Tensor, Tensor]:
    """The positive point of each map: its maximum outside the suppressed pixels.

    Args:
        prior: (K, H_v, W_v) maps. suppressed: (K, H_v, W_v) bool, pixels already covered.

    Returns:
        (points (K, 2) xy input-pixel indices as float, peak values (K,); -inf where every
        pixel is suppressed).
    """
    flat = prior.masked_fill(suppressed, float('-inf')).flatten(1)
    peak, idx = flat.max(1)
    w = prior.shape[-1]
    return torch.stack([idx % w, idx // w], 1).to(prior.dtype), peak


def negative_points(prior: Tensor) -> Tensor:
    """(K, H_v, W_v) maps -> (K, 2) xy of each map's minimum (the background point)."""
    idx = prior.flatten(1).argmin(1)
    w = prior.shape[-1]
    return torch.stack([idx % w, idx // w], 1).to(prior.dtype)


def attention_bias(sim: Tensor, valid: Tuple[int, int], side: int) -> Tensor:
    """Target-guided attention weights on the token grid.

    Args:
        sim: (K, h, w) maps (suppressed tokens may already be lowered).
        valid: (H_v, W_v) valid input size; tokens outside it are padding.
        side: S, the input side.

    Returns:
        (K, 1, 1, h*w) ``sigmoid((sim - mean) / std)`` over the valid tokens, padding tokens
        set to the lowest valid value; broadcast over heads and queries.
    """
    k, h, w = sim.shape
    vh, vw = math.ceil(valid[0] * h / side), math.ceil(valid[1] * w / side)
    inside = torch.zeros(h, w, dtype=torch.bool, device=sim.device)
    inside[:vh, :vw] = True
    vals = sim[:, inside]  # (K, n_valid)
    z = (sim - vals.mean(1)[:, None, None]) / vals.std(1).clamp(min=1e-6)[:, None, None]
    low = z[:, inside].min(1).values[:, None, None]
    z = torch.where(inside, z, low)
    return z.sigmoid().view(k, 1, 1, h * w)
