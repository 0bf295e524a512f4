"""Frozen SAM (or SAM 2) as a box-prompt segmenter: one image pass, all boxes in one call.

Shape shorthand: N boxes of one image, (H0, W0) the original image size, S the model
input side (1024 real, 256 tiny), (Hi, Wi) the image after the longest-side resize.

This composes the repository's frozen parts, built from config: the image encoder
(:class:`SAMImageEncoder` / :class:`SAM2ImageEncoder`), SAM's preprocessing
(:class:`InContextDataPreprocessor` with SAM's mean/std, RGB, zero padding to S x S after
normalisation) and :class:`SAMBoxPromptMaskHead`, which decodes all N boxes of an image in
one batched call and post-processes the masks to the original size exactly as
``SamPredictor`` (``multimask_output=False``).
"""
import os.path as osp
from typing import Optional, Tuple

import mmcv
import numpy as np
import torch
from mmengine.structures import InstanceData
from torch import nn

from mmdet.registry import MODELS
from ..models.sam.presets import checkpoint_hint
from ..models.sam.sam2_presets import sam2_checkpoint_hint
from ..utils.checkpoint import MissingResourceError

SAM_MEAN, SAM_STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]

# user-facing preset -> (encoder type, decoder type, preset name inside the family, hint)
PROMPTER_PRESETS = {
    **{p: ('SAMImageEncoder', 'SAMPromptDecoder', p, checkpoint_hint)
       for p in ('vit_b', 'vit_l', 'vit_h', 'tiny')},
    **{f'sam2_{p}': ('SAM2ImageEncoder', 'SAM2PromptDecoder', p, sam2_checkpoint_hint)
       for p in ('hiera_t', 'hiera_s', 'hiera_b+', 'hiera_l', 'tiny')},
}


class SAMBoxPrompter(nn.Module):
    """Segment boxes of one image with a frozen SAM.

    Args:
        preset: ``vit_b`` / ``vit_l`` / ``vit_h`` / ``tiny`` (SAM) or ``sam2_hiera_t`` /
            ``sam2_hiera_s`` / ``sam2_hiera_b+`` / ``sam2_hiera_l`` / ``sam2_tiny`` (SAM 2).
        checkpoint: local official checkpoint (for ``tiny``: the file written by
            ``tools/misc/pretrain_toy_sam.py``); None = random weights (tests, smoke runs).
        device: torch device.
        mask_threshold: SAM's logit threshold (0.0).
    """

    def __init__(self, preset: str = 'vit_h', checkpoint: Optional[str] = None,
                 device: str = 'cpu', mask_threshold: float = 0.0) -> None:
        super().__init__()
        if preset not in PROMPTER_PRESETS:
            raise KeyError(f'unknown SAM preset {preset!r}; choose one of '
                           f'{sorted(PROMPTER_PRESETS)}')
        enc_type, dec_type, name, hint = PROMPTER_PRESETS[preset]
        # fail before building a 600M-parameter encoder when the weights are missing
        if checkpoint is not None and not osp.isfile(checkpoint):
            raise MissingResourceError(f'SAM checkpoint not found: {checkpoint!r}. {hint(name)}')
        self.preset = preset
        self.encoder = MODELS.build(dict(type=enc_type, preset=name, checkpoint=checkpoint))
        self.head = MODELS.build(dict(
            type='SAMBoxPromptMaskHead', mask_threshold=mask_threshold,
            score_mode='box_x_iou',  # box scores are 1, so scores = SAM's predicted IoU
            decoder=dict(type=dec_type, preset=name, checkpoint=checkpoint)))
        self.img_size = self.encoder.img_size
        self.preprocessor = MODELS.build(dict(
            type='InContextDataPreprocessor', mean=SAM_MEAN, std=SAM_STD, bgr_to_rgb=True,
            pad_size_divisor=self.img_size, pad_value=0))
        self.to(device).eval()

    @property
    def device(self) -> torch.device:
        return self.preprocessor.device

    @torch.no_grad()
    def embed(self, img: np.ndarray):
        """One image-encoder pass.

        Args:
            img: (H0, W0, 3) uint8 BGR image (as read by mmcv / cv2).

        Returns:
            (embedding for the decoder, meta dict with ``img_shape`` (Hi, Wi),
            ``ori_shape`` (H0, W0), ``scale_factor`` (w_scale, h_scale)).
        """
        h0, w0 = img.shape[:2]
        resized = mmcv.imrescale(img, (self.img_size, self.img_size), backend='cv2')
        x = torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1)))
        x = self.preprocessor(dict(inputs=[x], data_samples=None), False)['inputs']
        emb = self.encoder(x)[-1]
        meta = dict(img_shape=resized.shape[:2], ori_shape=(h0, w0),
                    scale_factor=(resized.shape[1] / w0, resized.shape[0] / h0))
        return emb, meta

    @torch.no_grad()
    def segment(self, embedding, meta: dict, boxes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Masks of N boxes on an embedded image, in ONE batched decoder call.

        Args:
            embedding, meta: from :meth:`embed`.
            boxes: (N, 4) xyxy boxes in original-image pixels.

        Returns:
            (masks (N, H0, W0) bool, predicted IoU (N,) float32).
        """
        b = torch.as_tensor(np.asarray(boxes, np.float32).reshape(-1, 4), device=self.device)
        res = InstanceData(bboxes=b, scores=torch.ones(len(b), device=self.device))
        out = self.head.predict(embedding, [res], [meta])[0]
        return out.masks.cpu().numpy(), out.scores.float().cpu().numpy()

    def forward(self, img: np.ndarray, boxes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``segment(*embed(img), boxes)``: (masks (N, H0, W0) bool, IoU (N,))."""
        return self.segment(*self.embed(img), boxes)
