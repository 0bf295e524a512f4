"""Unlabelled images for self-supervised pretraining of the toy encoders.

Self-supervised pretraining must never see a class label: this module reads image FILES
only (every ``*.png`` / ``*.jpg`` under a folder) and has no access to any annotation file,
so neither the MAE nor the DINO objective can use one.

Shape shorthand: N images, S the output side.
"""
import glob
import os.path as osp
from typing import List

import numpy as np
import torch
from torch import Tensor

from mmsamantics.utils.images import load_image_checked

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp')
# SAM's and DINOv2's input normalisation (ImageNet mean/std, RGB, 0-255 scale)
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


def list_images(img_dir: str) -> List[str]:
    """Sorted image paths under ``img_dir`` (recursively); a clear error when there is none."""
    paths = sorted(p for p in glob.glob(osp.join(img_dir, '**', '*'), recursive=True)
                   if p.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise FileNotFoundError(f'no image ({", ".join(IMAGE_EXTENSIONS)}) under {img_dir!r}: '
                                'point the pretraining tool at a folder of images, e.g. '
                                'data/toy_world/train')
    return paths


def load_rgb_images(paths: List[str]) -> List[Tensor]:
    """(3, H_i, W_i) uint8 RGB tensors, in the order of ``paths``."""
    out = []
    for p in paths:
        bgr = load_image_checked(p)
        out.append(torch.from_numpy(np.ascontiguousarray(bgr[..., ::-1].transpose(2, 0, 1))))
    return out


def normalize(imgs: Tensor) -> Tensor:
    """(B, 3, H, W) RGB in [0, 255] -> SAM/DINOv2-normalised float."""
    mean = imgs.new_tensor(PIXEL_MEAN).view(1, 3, 1, 1)
    std = imgs.new_tensor(PIXEL_STD).view(1, 3, 1, 1)
    return (imgs.float() - mean) / std
