"""SAMIC's training loss (§3.5): KLD + (1 - CC) + NSS between heatmaps.

Each term is a function of one batch of heatmaps, returning one value per map:

    KLD(G, Gh) = sum_i G_i log(eps + G_i / (Gh_i + eps))                                (1)
    CC(Gh, G)  = cov(Gh, G) / (std(Gh) std(G)),       Loss_CC = 1 - CC                  (2)
    NSS(Gh, F) = 1/N sum_i (Rb_i - Gb_i) F_i,  F = 1[G > 0.5], N = sum_i F_i,           (3)
                 Gb = (Gh - mean(Gh)) / std(Gh),  Rb = (G - mean(G)) / std(G)

with eps = 1e-6 (the paper's). KLD compares the maps as distributions (each divided by its
sum) by default, as in the saliency metric the paper cites (Bylinskii et al., TPAMI 2018);
``normalize=False`` applies (1) to the raw [0, 1] maps. Standard deviations are population
ones (1/n). A ground truth without foreground (a class absent from the target, e.g. a
negative reference) has no defined CC or NSS: both are 0 for it.

Shape shorthand: B maps of (H, W) pixels.
"""
from typing import Dict, Optional

import torch
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.registry import MODELS

EPS = 1e-6


def _flat(x: Tensor) -> Tensor:
    x = x.reshape(x.shape[0], -1)
    return x if x.is_floating_point() else x.float()


def kld_loss(pred: Tensor, gt: Tensor, eps: float = EPS, normalize: bool = True) -> Tensor:
    """Eq. (1), ``sum_i G_i log(eps + G_i / (Gh_i + eps))`` per map.

    Args:
        pred: (B, ...) predicted heatmaps Gh >= 0.
        gt: (B, ...) ground-truth heatmaps G >= 0.
        normalize: divide each map by its sum first (distributions, as in the cited metric).

    Returns:
        (B,) KLD of each map.
    """
    p, g = _flat(pred), _flat(gt)
    if normalize:
        p = p / (p.sum(1, keepdim=True) + eps)
        g = g / (g.sum(1, keepdim=True) + eps)
    return (g * torch.log(eps + g / (p + eps))).sum(1)


def cc_loss(pred: Tensor, gt: Tensor, eps: float = EPS) -> Tensor:
    """Eq. (2), ``1 - cov(Gh, G) / (std(Gh) std(G))`` per map, in [0, 2].

    Returns:
        (B,) one minus Pearson's correlation; 0 where G is constant (no foreground).
    """
    p, g = _flat(pred), _flat(gt)
    pc = p - p.mean(1, keepdim=True)
    gc = g - g.mean(1, keepdim=True)
    cov = (pc * gc).mean(1)
    std_p, std_g = pc.pow(2).mean(1).sqrt(), gc.pow(2).mean(1).sqrt()
    cc = cov / (std_p * std_g).clamp(min=eps)  # eps only guards constant maps
    return torch.where(std_g > 0, 1 - cc, torch.zeros_like(cc))


def nss_loss(pred: Tensor, gt: Tensor, thr: float = 0.5, eps: float = EPS) -> Tensor:
    """Eq. (3), ``1/N sum_i (Rb_i - Gb_i) F_i`` with ``F = 1[G > thr]`` per map.

    Returns:
        (B,) NSS loss; 0 where F is empty.
    """
    p, g = _flat(pred), _flat(gt)
    fix = (g > thr).float()
    n = fix.sum(1)
    pb = (p - p.mean(1, keepdim=True)) / p.std(1, unbiased=False, keepdim=True).clamp(min=eps)
    gb = (g - g.mean(1, keepdim=True)) / g.std(1, unbiased=False, keepdim=True).clamp(min=eps)
    return torch.where(n > 0, ((gb - pb) * fix).sum(1) / n.clamp(min=1), torch.zeros_like(n))


@MODELS.register_module()
class SAMICSaliencyLoss(BaseModule):
    """``KLD + (1 - CC) + NSS``, averaged over the maps, each term weighted and logged.

    Args:
        loss_weights: weights of the ``kld``, ``cc`` and ``nss`` terms (paper: all 1).
        kld_normalize: see :func:`kld_loss`.
        empty_weight: NOT in the paper: weight of ``mean(Gh)`` on maps whose ground truth
            is empty (negative classes), where the paper's terms give no signal. Only used
            when such maps exist.
        nss_thr: binarisation threshold of the fixation map F (paper: 0.5).
    """

    def __init__(self, loss_weights: Optional[Dict[str, float]] = None,
                 kld_normalize: bool = True, empty_weight: float = 1.0,
                 nss_thr: float = 0.5) -> None:
        super().__init__()
        self.loss_weights = dict(kld=1.0, cc=1.0, nss=1.0, **(loss_weights or {}))
        if set(self.loss_weights) != {'kld', 'cc', 'nss'}:
            raise ValueError(f'loss_weights keys must be kld, cc, nss; got '
                             f'{sorted(self.loss_weights)}')
        self.kld_normalize = kld_normalize
        self.empty_weight = empty_weight
        self.nss_thr = nss_thr

    def forward(self, pred: Tensor, gt: Tensor) -> Dict[str, Tensor]:
        """Args: pred, gt (B, 1, H, W). Returns ``loss_kld``, ``loss_cc``, ``loss_nss``
        (and ``loss_empty`` when some ground truth is empty)."""
        if pred.shape != gt.shape:
            raise ValueError(f'predicted heatmaps {tuple(pred.shape)} and ground truth '
                             f'{tuple(gt.shape)} must have the same shape')
        has_fg = _flat(gt).amax(1) > self.nss_thr
        w = self.loss_weights
        losses = {}
        pos = has_fg.float()
        n_pos = pos.sum().clamp(min=1)
        for name, fn in (('kld', lambda p, g: kld_loss(p, g, normalize=self.kld_normalize)),
                         ('cc', cc_loss),
                         ('nss', lambda p, g: nss_loss(p, g, thr=self.nss_thr))):
            losses[f'loss_{name}'] = w[name] * (fn(pred, gt) * pos).sum() / n_pos
        if (~has_fg).any() and self.empty_weight > 0:
            empty = _flat(pred)[~has_fg].mean(1)
            losses['loss_empty'] = self.empty_weight * empty.sum() / len(pred)
        return losses
