"""Pretrain the tiny DINOv2 ViT on unlabelled toy images by self-distillation (DINOv2).

The weights are written in timm's layout of ``vit_*_patch14_dinov2`` (the teacher, as DINO
and DINOv2 release the teacher), so :class:`DINOv2Encoder` with ``preset='tiny'`` loads them
through its normal strict loading code, like a real DINOv2 checkpoint.

Shape shorthand: B images per step, K prototypes, C the ViT width.
"""
import copy
import os
import os.path as osp
import time
from typing import Dict, Optional, Tuple

import numpy as np
import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from mmsamantics.models.backbones.dinov2_encoder import DINOV2_MODELS

from .dino import (DINOHead, DINOLoss, IBOTPatchLoss, MultiCrop, cosine_momentum, ema_update,
                   ibot_masks, koleo_loss, teacher_temperature)
from .image_folder import list_images, load_rgb_images, normalize


def build_tiny_vit(preset: str = 'tiny', img_size: int = 224,
                   init_values: Optional[float] = None) -> nn.Module:
    """The timm ViT of a :class:`DINOv2Encoder` preset, trainable (same parameter layout).

    ``init_values`` overrides the LayerScale start (DINOv2: 1e-5); it changes only the
    initial values, not the checkpoint layout.
    """
    import timm
    name, kwargs = DINOV2_MODELS[preset]
    kwargs = dict(kwargs)
    if init_values is not None:
        kwargs['init_values'] = init_values
    return timm.create_model(name, pretrained=False, img_size=img_size, dynamic_img_size=True,
                             num_classes=0, **kwargs)


class DINOStudent(nn.Module):
    """ViT + DINO head + iBOT mask token (kept outside the ViT: the checkpoint keeps timm's
    layout). ``forward`` gives the (n, K) logits of the CLS token."""

    def __init__(self, vit: nn.Module, out_dim: int) -> None:
        super().__init__()
        self.vit = vit
        self.head = DINOHead(vit.embed_dim, out_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, vit.embed_dim))

    def tokens(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """(n, 3, H, W) -> (n, 1 + N, C) normed tokens (timm's ``forward_features``), the
        patch embeddings where ``mask`` (n, N) is True replaced by the mask token."""
        v = self.vit
        t = v.patch_embed(x)  # (n, h, w, C) with dynamic_img_size
        if mask is not None:
            t = torch.where(mask.view(*t.shape[:-1], 1), self.mask_token.to(t.dtype), t)
        t = v.norm_pre(v.patch_drop(v._pos_embed(t)))
        return v.norm(v.blocks(t))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.tokens(x)[:, 0])


def dino_step(student: DINOStudent, teacher: DINOStudent, losses: Dict[str, nn.Module],
              glob: Tensor, local: Tensor, mask: Tensor, teacher_temp: float,
              weights: Dict[str, float]) -> Tuple[Tensor, Dict[str, float]]:
    """The DINOv2 objective on one batch of crops.

    Args:
        student / teacher: the two networks. losses: ``dino`` (:class:`DINOLoss`) and
            ``ibot`` (:class:`IBOTPatchLoss`).
        glob: (2B, 3, G, G) global crops. local: (n_local * B, 3, g, g) local crops.
        mask: (2B, N) bool iBOT mask of the global crops' patches.
        teacher_temp: this step's teacher temperature.
        weights: ``ibot`` and ``koleo`` loss weights (the DINO term has weight 1).

    Returns:
        (total loss, its terms as floats).
    """
    n_crops = 2 + len(local) // (len(glob) // 2)
    with torch.no_grad():
        t_tok = teacher.tokens(glob)
        t_cls = teacher.head(t_tok[:, 0])
        t_patch = teacher.head(t_tok[:, 1:][mask]) if weights['ibot'] else None
    s_tok = student.tokens(glob, mask if weights['ibot'] else None)
    s_cls = [student.head(s_tok[:, 0])] + ([student(local)] if len(local) else [])
    terms = {'dino': losses['dino'](torch.cat(s_cls), t_cls, n_crops, teacher_temp)}
    if weights['ibot']:
        terms['ibot'] = weights['ibot'] * losses['ibot'](
            student.head(s_tok[:, 1:][mask]), t_patch, mask, teacher_temp)
    if weights['koleo']:  # per global crop, over the batch (DINOv2)
        terms['koleo'] = weights['koleo'] * sum(
            koleo_loss(c) for c in s_tok[:, 0].chunk(2)) / 2
    total = sum(terms.values())
    return total, {k: v.item() for k, v in terms.items()}


def pretrain_toy_dinov2(img_dir: str, out_file: str, epochs: int = 30, batch_size: int = 32,
                        lr: float = 1e-3, seed: int = 0, out_dim: int = 256,
                        global_size: int = 112, local_size: int = 56, n_local: int = 4,
                        global_scale: Tuple[float, float] = (0.05, 0.3),
                        local_scale: Tuple[float, float] = (0.01, 0.08),
                        ibot_weight: float = 1.0, koleo_weight: float = 0.1,
                        teacher_temp: Tuple[float, float] = (0.04, 0.07),
                        init_values: float = 0.1, max_images: Optional[int] = None) -> dict:
    """DINOv2-style self-distillation of the tiny DINOv2 ViT on the images under ``img_dir``.

    Args:
        img_dir: folder of images (read as files only: no annotation is opened).
        out_file: the teacher ViT's state dict (timm layout).
        epochs / batch_size / lr: AdamW (weight decay 0.04), linear warm-up over the first
            10 % of the steps, cosine decay to 0; gradients clipped at norm 3 (DINO).
        seed: makes the weights reproducible (crops, masks and initialisation).
        out_dim: K prototypes (DINO's 65,536 are for millions of images; 256 for 400).
        global_size / local_size / n_local / global_scale / local_scale: multi-crop
            (:class:`MultiCrop`). DINO's area fractions (0.4-1 / 0.05-0.4) are for
            ImageNet, where one object fills most of the image; a toy object fills about
            4 % of its image, so the global crops take 5-30 % (one to a few objects, at
            about the scale at which the toy classification images show one) and the
            local crops 1-8 % (about one object or a part of it).
        ibot_weight / koleo_weight: weights of the iBOT and KoLeo terms (0 = off).
        teacher_temp: (start, end) of the teacher temperature, warmed up linearly over the
            first 30 % of the steps.
        init_values: LayerScale start (see :func:`build_tiny_vit`).
        max_images: use only the first N images (tests).

    Returns:
        dict(first_loss, last_loss, seconds, images, steps).
    """
    if epochs < 1:
        raise ValueError(f'epochs must be >= 1, got {epochs}')
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    images = load_rgb_images(list_images(img_dir)[:max_images])
    student = DINOStudent(build_tiny_vit(init_values=init_values), out_dim)
    teacher = copy.deepcopy(student)
    for p in teacher.parameters():
        p.requires_grad_(False)
    losses = {'dino': DINOLoss(out_dim), 'ibot': IBOTPatchLoss(out_dim)}
    weights = {'ibot': ibot_weight, 'koleo': koleo_weight}
    crops = MultiCrop(global_size, local_size, n_local, global_scale, local_scale)
    n_patches = (global_size // 14) ** 2
    opt = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.04)
    steps = epochs * int(np.ceil(len(images) / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.1, anneal_strategy='cos')
    t0, step, history = time.time(), 0, []
    for epoch in range(epochs):
        order = rng.permutation(len(images))
        epoch_losses = []
        for s in range(0, len(images), batch_size):
            glob, local = crops.batch([images[j] for j in order[s:s + batch_size]])
            mask = ibot_masks(len(glob), n_patches, generator=gen)
            loss, terms = dino_step(student, teacher, losses, normalize(glob),
                                    normalize(local), mask,
                                    teacher_temperature(step, int(0.3 * steps), *teacher_temp),
                                    weights)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 3.0)
            opt.step()
            sched.step()
            step += 1
            ema_update(teacher, student, cosine_momentum(step, steps))
            epoch_losses.append(loss.item())
        history.append(float(np.mean(epoch_losses)))
        print_log(f'[toy DINOv2 pretraining] epoch {epoch + 1}/{epochs}: loss {history[-1]:.4f} '
                  f'({", ".join(f"{k} {v:.3f}" for k, v in terms.items())}; '
                  f'{time.time() - t0:.0f}s)', logger='current')
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    torch.save(teacher.vit.state_dict(), out_file)
    return dict(first_loss=history[0], last_loss=history[-1], seconds=time.time() - t0,
                images=len(images), steps=steps)
