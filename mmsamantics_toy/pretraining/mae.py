"""Masked-image-model pretraining of SAM's ViT image encoder (the MAE objective).

SAM's image encoder starts from an MAE-pretrained ViT (Kirillov et al., "Segment Anything",
§3 and appendix A; He et al., "Masked Autoencoders Are Scalable Vision Learners"), which is
why its features keep colour and texture. The toy SAM is made the same way: this objective
first, then promptable segmentation (:mod:`.promptable_sam`).

The objective is MAE's: a random 75 % of the patches is hidden, the model reconstructs their
pixels, the target of each patch is its pixels normalised by the patch's own mean and
variance (MAE's ``norm_pix_loss``), and the loss is the mean squared error over the hidden
patches only. SAM's encoder attends within windows over the full token grid, so it cannot
drop hidden tokens as MAE's plain ViT does: they are replaced by a learned mask token (as
SimMIM does for windowed backbones) and a linear head predicts the pixels from the last
block's output. The neck (SAM's 256-d projection) is not used here; it is trained by the
promptable-segmentation stage.

Shape shorthand: B images, S input side, p patch side, h = w = S / p, N = h * w patches,
C the ViT width.
"""
import os
import os.path as osp
import time
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from segment_anything.modeling import ImageEncoderViT
from torch import Tensor, nn
from torchvision.transforms import v2

from mmsamantics.models.backbones.sam_image_encoder import SAMImageEncoder

from .image_folder import list_images, load_rgb_images, normalize


def patchify(imgs: Tensor, patch: int) -> Tensor:
    """(B, 3, S, S) -> (B, N, p * p * 3), patches in row-major order, pixels (y, x, c)."""
    b, c, hh, ww = imgs.shape
    h, w = hh // patch, ww // patch
    x = imgs.reshape(b, c, h, patch, w, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, h * w, patch * patch * c)


def random_patch_mask(batch: int, num_patches: int, ratio: float,
                      generator: Optional[torch.Generator] = None,
                      device: Optional[torch.device] = None) -> Tensor:
    """(B, N) bool, True = hidden: exactly ``round(ratio * N)`` patches per image, drawn
    uniformly without replacement (MAE's per-sample shuffle)."""
    if not 0 < ratio < 1:
        raise ValueError(f'mask_ratio must be in (0, 1), got {ratio}')
    k = int(round(ratio * num_patches))
    noise = torch.rand(batch, num_patches, generator=generator, device=device)
    hidden = noise.argsort(dim=1)[:, :k]
    mask = torch.zeros(batch, num_patches, dtype=torch.bool, device=device)
    return mask.scatter_(1, hidden, True)


class MaskedImageModel(nn.Module):
    """SAM's ViT encoder + a mask token + a linear pixel head, trained with MAE's loss.

    Args:
        encoder: ``segment_anything``'s :class:`ImageEncoderViT` (trained in place).
        mask_ratio: fraction of hidden patches (MAE: 0.75).
    """

    def __init__(self, encoder: ImageEncoderViT, mask_ratio: float = 0.75) -> None:
        super().__init__()
        self.encoder = encoder
        self.mask_ratio = mask_ratio
        width = encoder.patch_embed.proj.out_channels
        self.patch = encoder.patch_embed.proj.kernel_size[0]
        self.mask_token = nn.Parameter(torch.zeros(1, 1, 1, width))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.head = nn.Linear(width, self.patch * self.patch * 3)

    def encode_masked(self, imgs: Tensor, mask: Tensor) -> Tensor:
        """(B, 3, S, S) normalised images, (B, N) hidden patches -> (B, h, w, C) tokens of
        the last block (hidden patches entered as the mask token)."""
        enc = self.encoder
        x = enc.patch_embed(imgs)  # (B, h, w, C)
        b, h, w, _ = x.shape
        x = torch.where(mask.view(b, h, w, 1), self.mask_token.to(x.dtype), x)
        if enc.pos_embed is not None:
            x = x + enc.pos_embed
        for blk in enc.blocks:
            x = blk(x)
        return x

    def forward(self, imgs: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        """MAE loss of a batch.

        Args:
            imgs: (B, 3, S, S) normalised images (S = the encoder's input side).
            generator: RNG of the patch mask (reproducible runs and tests).

        Returns:
            scalar: mean over hidden patches of the squared error against per-patch
            normalised pixels.
        """
        b = imgs.shape[0]
        n = (imgs.shape[-2] // self.patch) * (imgs.shape[-1] // self.patch)
        mask = random_patch_mask(b, n, self.mask_ratio, generator, imgs.device)
        pred = self.head(self.encode_masked(imgs, mask)).flatten(1, 2)  # (B, N, p*p*3)
        return self.loss(pred, imgs, mask)

    def loss(self, pred: Tensor, imgs: Tensor, mask: Tensor) -> Tensor:
        """MAE's ``norm_pix_loss``: (B, N, p*p*3) predictions, (B, 3, S, S) images, (B, N)
        hidden -> scalar."""
        target = patchify(imgs, self.patch)
        mean = target.mean(-1, keepdim=True)
        var = target.var(-1, keepdim=True)
        target = (target - mean) / (var + 1e-6).sqrt()
        per_patch = F.mse_loss(pred, target, reduction='none').mean(-1)
        return (per_patch * mask).sum() / mask.sum().clamp(min=1)


def pretrain_sam_encoder_mae(img_dir: str, out_file: str, preset: str = 'tiny',
                             epochs: int = 40, batch_size: int = 16, lr: float = 1.5e-3,
                             mask_ratio: float = 0.75, seed: int = 0,
                             max_images: Optional[int] = None) -> dict:
    """MAE pretraining of a SAM preset's image encoder on the images under ``img_dir``.

    Augmentation as MAE: random resized crop (area 20-100 %) to the encoder's input side
    and a horizontal flip; nothing else. Only image files are read (no annotation).

    Args:
        img_dir: folder of images. out_file: ``image_encoder.*`` state dict (the official
            SAM checkpoint layout; the neck keeps its initial weights).
        preset: SAM size preset (``tiny`` for the toy world).
        epochs / batch_size / lr: AdamW (betas 0.9/0.95, weight decay 0.05, as MAE),
            warm-up over 10 % of the steps then cosine decay.
        mask_ratio: fraction of hidden patches. seed: reproducible weights.
        max_images: use only the first N images (tests).

    Returns:
        dict(first_loss, last_loss, seconds, images, steps).
    """
    if epochs < 1:
        raise ValueError(f'epochs must be >= 1, got {epochs} (skip the MAE stage instead: '
                         'tools/misc/pretrain_toy_sam.py --mae-epochs 0)')
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    images = load_rgb_images(list_images(img_dir)[:max_images])
    encoder = SAMImageEncoder(preset=preset, frozen=False).encoder
    model = MaskedImageModel(encoder, mask_ratio)
    size = encoder.img_size
    aug = v2.Compose([v2.RandomResizedCrop(size, (0.2, 1.0), antialias=True),
                      v2.RandomHorizontalFlip()])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.05)
    steps = epochs * int(np.ceil(len(images) / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.1, anneal_strategy='cos')
    t0, losses = time.time(), []
    model.train()
    for epoch in range(epochs):
        order = rng.permutation(len(images))
        epoch_losses = []
        for s in range(0, len(images), batch_size):
            batch = normalize(torch.stack([aug(images[j]) for j in order[s:s + batch_size]]))
            loss = model(batch, gen)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            epoch_losses.append(loss.item())
        losses.append(float(np.mean(epoch_losses)))
        print_log(f'[toy SAM MAE pretraining] epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f} '
                  f'({time.time() - t0:.0f}s)', logger='current')
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    torch.save({f'image_encoder.{k}': v for k, v in encoder.state_dict().items()}, out_file)
    return dict(first_loss=losses[0], last_loss=losses[-1], seconds=time.time() - t0,
                images=len(images), steps=steps)
