"""Self-distillation without labels (DINO) for the tiny DINOv2 ViT of the toy world.

DINOv2 (Oquab et al., 2023) is trained by self-distillation: a student ViT matches, on every
crop of an image, the output distribution that an exponential-moving-average teacher gives
for the two large crops of the same image (Caron et al., "Emerging Properties in
Self-Supervised Vision Transformers", §3.1). No label is used: the targets are the
teacher's own sharpened, centred outputs. This module implements that objective (the
image-level DINO loss) and the two terms DINOv2 adds to it (Oquab et al., §4):

- multi-crop: 2 global crops and ``n_local`` small local crops per image; the teacher sees
  the global crops only, the student every crop, and each student crop is matched to each
  teacher crop other than itself;
- the DINO head: 3-layer MLP, l2-normalised bottleneck, weight-normalised prototypes
  (weight norm fixed to 1, as DINO's ``norm_last_layer``);
- teacher outputs centred (centre = EMA of the batch mean, momentum 0.9) and sharpened
  (temperature 0.04; student 0.1);
- teacher = EMA of the student with a momentum that follows a cosine from 0.996 to 1;
- iBOT's masked-patch loss (Zhou et al., "iBOT: Image BERT Pre-Training with Online
  Tokenizer", §3.2): patches of the student's global crops are replaced by a learned mask
  token and each masked patch token must predict the teacher's (unmasked) distribution for
  that patch, through the same head (DINOv2's default, ``separate_head: false``);
- the KoLeo regulariser on the student's CLS tokens (Sablayrolles et al., 2019), which
  spreads the features of a batch uniformly.

Shape shorthand: B images, V = 2 + n_local crops per image, K prototypes, C ViT width,
N patches of a global crop.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.transforms import v2

from .mae import random_patch_mask


class DINOHead(nn.Module):
    """MLP -> l2-normalised bottleneck -> K prototype logits (unit-norm prototypes).

    Args:
        in_dim: C. out_dim: K. hidden_dim / bottleneck_dim: MLP widths.
    """

    def __init__(self, in_dim: int, out_dim: int = 1024, hidden_dim: int = 512,
                 bottleneck_dim: int = 128) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(),
                                 nn.Linear(hidden_dim, hidden_dim), nn.GELU(),
                                 nn.Linear(hidden_dim, bottleneck_dim))
        self.prototypes = nn.Parameter(torch.empty(out_dim, bottleneck_dim))
        nn.init.trunc_normal_(self.prototypes, std=0.02)
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        """(n, C) -> (n, K) logits: cosine between the bottleneck and each prototype."""
        z = F.normalize(self.mlp(x), dim=-1)
        return z @ F.normalize(self.prototypes, dim=-1).t()


class DINOLoss(nn.Module):
    """Cross-entropy between the centred, sharpened teacher and the student, over crop pairs.

    Args:
        out_dim: K. student_temp / teacher_temp: softmax temperatures.
        center_momentum: EMA momentum of the teacher centre.
    """

    def __init__(self, out_dim: int, student_temp: float = 0.1, teacher_temp: float = 0.04,
                 center_momentum: float = 0.9) -> None:
        super().__init__()
        self.student_temp = student_temp
        self.teacher_temp = teacher_temp
        self.center_momentum = center_momentum
        self.register_buffer('center', torch.zeros(1, out_dim))

    def forward(self, student: Tensor, teacher: Tensor, n_crops: int,
                teacher_temp: Optional[float] = None) -> Tensor:
        """Args:
            student: (V * B, K) logits, crop-major (all images' crop 0, then crop 1, ...).
            teacher: (2 * B, K) logits of the two global crops, same order.
            n_crops: V.
            teacher_temp: this step's teacher temperature (default: the constructor's).

        Returns:
            scalar: the mean over (teacher crop, other student crop) pairs. Updates the
            centre with the teacher batch mean afterwards.
        """
        s = (student / self.student_temp).chunk(n_crops)
        tt = self.teacher_temp if teacher_temp is None else teacher_temp
        t = F.softmax((teacher - self.center) / tt, dim=-1).detach().chunk(2)
        total, pairs = student.new_zeros(()), 0
        for i, q in enumerate(t):
            for v in range(n_crops):
                if v == i:  # a crop is not its own target
                    continue
                total = total + torch.sum(-q * F.log_softmax(s[v], dim=-1), dim=-1).mean()
                pairs += 1
        self.update_center(teacher)
        return total / pairs

    @torch.no_grad()
    def update_center(self, teacher: Tensor) -> None:
        m = self.center_momentum
        self.center.mul_(m).add_(teacher.detach().mean(0, keepdim=True), alpha=1 - m)


class IBOTPatchLoss(DINOLoss):
    """iBOT's masked-image-modelling loss: cross-entropy between the centred, sharpened
    teacher distribution of each masked patch and the student's, averaged over the masked
    patches of an image, then over images (DINOv2's ``iBOTPatchLoss``). Its own centre,
    temperatures and centre momentum as :class:`DINOLoss`.
    """

    def forward(self, student: Tensor, teacher: Tensor, mask: Tensor,
                teacher_temp: Optional[float] = None) -> Tensor:
        """Args:
            student: (M, K) logits of the M masked patches of the student's crops, in the
                order of ``mask.nonzero()`` (crop-major, then patch).
            teacher: (M, K) logits of the same patches from the teacher (unmasked input).
            mask: (n, N) bool, True = masked in the student's input; M = mask.sum().
            teacher_temp: this step's teacher temperature (default: the constructor's).

        Returns:
            scalar (0 when nothing is masked). Updates the centre with the mean teacher
            logit over the masked patches.
        """
        if not mask.any():
            return student.sum() * 0
        tt = self.teacher_temp if teacher_temp is None else teacher_temp
        t = F.softmax((teacher - self.center) / tt, dim=-1).detach()
        ce = torch.sum(-t * F.log_softmax(student / self.student_temp, dim=-1), dim=-1)
        per_image = mask.sum(1)
        weight = (1.0 / per_image.clamp(min=1).float())[mask.nonzero()[:, 0]]  # (M,)
        loss = (ce * weight).sum() / (per_image > 0).sum()
        self.update_center(teacher)
        return loss


def ibot_masks(n_crops: int, num_patches: int, probability: float = 0.5,
               ratio_range: Tuple[float, float] = (0.1, 0.5),
               generator: Optional[torch.Generator] = None) -> Tensor:
    """Which patches of each global crop the student sees as the mask token (DINOv2).

    ``round(probability * n_crops)`` crops, drawn at random, are masked; their ratios are
    spread evenly over ``ratio_range`` (DINOv2 draws one ratio per crop between
    consecutive points of a linspace; here each takes one point) and each hides exactly
    ``round(ratio * N)`` uniformly drawn patches (DINOv2 hides blocks; with 8 x 8 tokens a
    block is most of a toy object).

    Returns: (n_crops, N) bool, True = masked.
    """
    lo, hi = ratio_range
    if not 0 <= probability <= 1 or not 0 < lo <= hi < 1:
        raise ValueError(f'need 0 <= probability <= 1 and 0 < ratio_range[0] <= '
                         f'ratio_range[1] < 1, got {probability}, {ratio_range}')
    mask = torch.zeros(n_crops, num_patches, dtype=torch.bool)
    n = int(round(probability * n_crops))
    crops = torch.randperm(n_crops, generator=generator)[:n]
    for c, r in zip(crops.tolist(), torch.linspace(lo, hi, n).tolist()):
        mask[c] = random_patch_mask(1, num_patches, r, generator)[0]
    return mask


def koleo_loss(x: Tensor, eps: float = 1e-8) -> Tensor:
    """KoLeo: ``-mean_i log(min_{j != i} ||x_i - x_j||)`` of the l2-normalised rows.

    Args: x (n, C). Returns: scalar (lower = more uniformly spread features; 0 when n < 2,
    a batch without neighbours).
    """
    if len(x) < 2:
        return x.sum() * 0
    x = F.normalize(x, dim=-1, eps=eps)
    d = torch.cdist(x, x)
    d = d + torch.eye(len(x), device=x.device, dtype=x.dtype) * 1e3  # not its own neighbour
    return -torch.log(d.min(1).values + eps).mean()


def teacher_temperature(step: int, warmup_steps: int, start: float = 0.04,
                        end: float = 0.07) -> float:
    """DINO's teacher temperature: linear from ``start`` to ``end`` over ``warmup_steps``,
    then ``end`` (DINOv2's 0.04 -> 0.07: a cold, sharp teacher at the start, when the
    student is random, keeps the training from collapsing to a uniform output)."""
    if step >= warmup_steps:
        return end
    return start + (end - start) * step / max(warmup_steps, 1)


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """teacher <- momentum * teacher + (1 - momentum) * student, parameter by parameter."""
    for pt, ps in zip(teacher.parameters(), student.parameters()):
        pt.mul_(momentum).add_(ps.detach(), alpha=1 - momentum)


def cosine_momentum(step: int, total: int, base: float = 0.996) -> float:
    """DINO's teacher momentum: ``base`` at step 0, rising along a cosine to 1 at ``total``."""
    return 1 - (1 - base) * (math.cos(math.pi * step / max(total, 1)) + 1) / 2


class MultiCrop:
    """2 global + ``n_local`` local random-resized crops of a (3, H, W) uint8 RGB image.

    Photometric augmentation is milder than DINO's (no hue shift, no grayscale, no
    solarisation): in the toy world colour is one of the two attributes a class is made of,
    as texture and shape are for natural images, and an augmentation that removes it
    teaches invariance to the very attribute the features should carry.

    Args:
        global_size / local_size: output sides (multiples of 14 for DINOv2).
        n_local: local crops per image.
        global_scale / local_scale: area fractions of the crops (DINO's (0.4, 1) / (0.05, 0.4)).
    """

    def __init__(self, global_size: int = 112, local_size: int = 56, n_local: int = 4,
                 global_scale: Tuple[float, float] = (0.4, 1.0),
                 local_scale: Tuple[float, float] = (0.05, 0.4)) -> None:
        jitter = v2.RandomApply([v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.1)],
                                p=0.8)
        flip = v2.RandomHorizontalFlip()
        self.global_t = v2.Compose([v2.RandomResizedCrop(global_size, global_scale,
                                                         antialias=True), flip, jitter])
        self.local_t = v2.Compose([v2.RandomResizedCrop(local_size, local_scale,
                                                        antialias=True), flip, jitter])
        self.n_local = n_local

    @property
    def n_crops(self) -> int:
        return 2 + self.n_local

    def __call__(self, img: Tensor) -> List[Tensor]:
        """(3, H, W) uint8 -> V crops (3, s, s) uint8: 2 global, then the local ones."""
        return ([self.global_t(img) for _ in range(2)]
                + [self.local_t(img) for _ in range(self.n_local)])

    def batch(self, imgs: Sequence[Tensor]) -> Tuple[Tensor, Tensor]:
        """Crops of B images, crop-major: ((2 * B, 3, G, G), (n_local * B, 3, g, g))."""
        crops = [self(im) for im in imgs]
        views = [torch.stack([c[v] for c in crops]) for v in range(self.n_crops)]
        glob = torch.cat(views[:2])
        local = torch.cat(views[2:]) if self.n_local else glob.new_zeros(0, *glob.shape[1:])
        return glob, local
