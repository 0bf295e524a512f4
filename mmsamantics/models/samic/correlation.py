"""Hypercorrelation pyramid (HSNet, Min et al. 2021; SAMIC, §3.3).

For every pair of same-depth features (target F^t, heatmap-masked reference F^c), the 4D
cosine correlation ``C(x^t, x^c) = ReLU(<F^t(x^t), F^c(x^c)> / (|F^t(x^t)| |F^c(x^c)|))``;
the correlations of the features of one ResNet stage are stacked on channels (one pyramid
layer). The target dims come first: squeezing blocks reduce the reference dims.

Shape shorthand: P pairs, Cf feature channels, L features in a stage, (Ha, Wa) target and
(Hb, Wb) reference feature sizes of that stage.
"""
from typing import List, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def mask_features(feats: Sequence[Tensor], heatmap: Tensor) -> List[Tensor]:
    """``F^c * zeta(G^c)``: multiply reference features by the bilinearly resized heatmap.

    The heatmap's blobs (sigma = 0.02 of the image) are narrower than a stride-32 cell, so
    plain bilinear sampling could miss them entirely; antialiased bilinear resizing averages
    over each cell instead. Cosine correlation ignores a positive scale, so the mask acts as
    a gate: a reference position counts as soon as its cell touches a blob.

    Args:
        feats: reference features, each (P, Cf, Hb, Wb).
        heatmap: (P, 1, H, W) reference heatmap in [0, 1].
    """
    out = []
    for f in feats:
        g = F.interpolate(heatmap, f.shape[-2:], mode='bilinear', align_corners=False,
                          antialias=True)
        out.append(f * g)
    return out


def cosine_correlation(target: Tensor, reference: Tensor, eps: float = 1e-5) -> Tensor:
    """ReLU'd cosine similarity of every target position with every reference position.

    Args:
        target: (P, Cf, Ha, Wa).
        reference: (P, Cf, Hb, Wb); all-zero (masked-out) vectors give correlation 0.

    Returns:
        (P, Ha, Wa, Hb, Wb).
    """
    p, c, ha, wa = target.shape
    hb, wb = reference.shape[-2:]
    t = target.flatten(2)
    r = reference.flatten(2)
    t = t / (t.norm(dim=1, keepdim=True) + eps)
    r = r / (r.norm(dim=1, keepdim=True) + eps)
    corr = torch.bmm(t.transpose(1, 2), r).clamp(min=0)
    return corr.view(p, ha, wa, hb, wb)


def hypercorrelation_pyramid(target_feats: Sequence[Tensor], ref_feats: Sequence[Tensor],
                             stage_ids: Sequence[int]) -> List[Tensor]:
    """Stack the correlations of each stage's features into one 4D tensor per stage.

    Args:
        target_feats / ref_feats: the same list of features (each (P, Cf_i, H_i, W_i)),
            reference features already masked by the heatmap.
        stage_ids: the stage index of each feature (e.g. 4 x 0, 6 x 1, 3 x 2 for ResNet-50).

    Returns:
        One (P, L_s, Ha, Wa, Hb, Wb) tensor per stage, deepest stage LAST.
    """
    if len(target_feats) != len(ref_feats) or len(target_feats) != len(stage_ids):
        raise ValueError(f'{len(target_feats)} target features, {len(ref_feats)} reference '
                         f'features and {len(stage_ids)} stage ids must match')
    stages: dict = {}
    for t, r, s in zip(target_feats, ref_feats, stage_ids):
        stages.setdefault(s, []).append(cosine_correlation(t, r))
    return [torch.stack(stages[s], dim=1) for s in sorted(stages)]
