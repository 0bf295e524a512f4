"""Pretrain the tiny DINOv2 ViT on unlabelled toy images by self-distillation (DINO).

The weights are written in timm's layout of ``vit_*_patch14_dinov2`` (the teacher, as DINO
and DINOv2 release the teacher), so :class:`DINOv2Encoder` with ``preset='tiny'`` loads them
through its normal strict loading code, like a real DINOv2 checkpoint.

Shape shorthand: B images per step, K prototypes, C the ViT width.
"""
import copy
import os
import os.path as osp
import time
from typing import Optional

import numpy as np
import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from ...models.backbones.dinov2_encoder import DINOV2_MODELS
from .dino import DINOHead, DINOLoss, MultiCrop, cosine_momentum, ema_update
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
    """ViT + DINO head; ``forward`` gives the (n, K) logits of the CLS token."""

    def __init__(self, vit: nn.Module, out_dim: int) -> None:
        super().__init__()
        self.vit = vit
        self.head = DINOHead(vit.embed_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.vit.forward_features(x)[:, 0])


def pretrain_toy_dinov2(img_dir: str, out_file: str, epochs: int = 30, batch_size: int = 32,
                        lr: float = 1e-3, seed: int = 0, out_dim: int = 1024,
                        global_size: int = 112, local_size: int = 56, n_local: int = 4,
                        init_values: float = 0.1, max_images: Optional[int] = None) -> dict:
    """DINO self-distillation of the tiny DINOv2 ViT on the images under ``img_dir``.

    Args:
        img_dir: folder of images (read as files only: no annotation is opened).
        out_file: the teacher ViT's state dict (timm layout).
        epochs / batch_size / lr: AdamW (weight decay 0.04), linear warm-up over the first
            10 % of the steps, cosine decay to 0; gradients clipped at norm 3 (DINO).
        seed: makes the weights reproducible (crops, masks and initialisation).
        out_dim: K prototypes. global_size / local_size / n_local: multi-crop.
        init_values: LayerScale start (see :func:`build_tiny_vit`).
        max_images: use only the first N images (tests).

    Returns:
        dict(first_loss, last_loss, seconds, images, steps).
    """
    if epochs < 1:
        raise ValueError(f'epochs must be >= 1, got {epochs}')
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    images = load_rgb_images(list_images(img_dir)[:max_images])
    student = DINOStudent(build_tiny_vit(init_values=init_values), out_dim)
    teacher = copy.deepcopy(student)
    for p in teacher.parameters():
        p.requires_grad_(False)
    criterion = DINOLoss(out_dim)
    crops = MultiCrop(global_size, local_size, n_local)
    opt = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=0.04)
    steps = epochs * int(np.ceil(len(images) / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.1, anneal_strategy='cos')
    t0, step, losses = time.time(), 0, []
    for epoch in range(epochs):
        order = rng.permutation(len(images))
        epoch_losses = []
        for s in range(0, len(images), batch_size):
            glob, local = crops.batch([images[j] for j in order[s:s + batch_size]])
            glob, local = normalize(glob), normalize(local)
            with torch.no_grad():
                t_out = teacher(glob)
            s_out = torch.cat([student(glob)] + ([student(local)] if len(local) else []))
            loss = criterion(s_out, t_out, crops.n_crops)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(student.parameters(), 3.0)
            opt.step()
            sched.step()
            step += 1
            ema_update(teacher, student, cosine_momentum(step, steps))
            epoch_losses.append(loss.item())
        losses.append(float(np.mean(epoch_losses)))
        print_log(f'[toy DINOv2 pretraining] epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f} '
                  f'({time.time() - t0:.0f}s)', logger='current')
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    torch.save(teacher.vit.state_dict(), out_file)
    return dict(first_loss=losses[0], last_loss=losses[-1], seconds=time.time() - t0,
                images=len(images), steps=steps)
