"""Class-agnostic region proposals from SAM prompted with a dense grid of points.

What SAM's ``SamAutomaticMaskGenerator`` does for one crop (Kirillov et al. 2023, §7.1),
rearranged for speed: the image is embedded once, points are decoded in batches with the
3 multimask outputs, and the filters (predicted IoU, stability score) and the
de-duplication (mask NMS) run on SAM's low-resolution logits (4h x 4w = 256 x 256 for a
1024 input) instead of full-resolution masks. Only the proposals a caller keeps are
upsampled (``SAMBoxPromptMaskHead.postprocess``). Differences from the generator: the
stability score is measured at low resolution (each low-res pixel is a 4 x 4 input block,
so the ratio is nearly unchanged) and duplicates are removed by mask IoU instead of box IoU.

Shape shorthand: D prompt width, h = w = S / 16 the embedding side, L = 4h the low-res
mask side, P = points_per_side ** 2 grid points, N proposals kept.
"""
from dataclasses import dataclass
from typing import Tuple

import torch
from segment_anything.utils.amg import (build_point_grid, calculate_stability_score,
                                         remove_small_regions)
from torch import Tensor

from mmdet.registry import TASK_UTILS
from .mask_ops import mask_nms

# logit of the padding region: a finite 'never' (-inf would give NaN when upsampled)
_OUTSIDE = -1e4


@dataclass
class Proposals:
    """SAM proposals of one image, on the padded low-resolution canvas (L x L).

    Attributes:
        logits: (N, L, L) SAM mask logits (outside the valid image region: -1e4).
        masks: (N, L, L) bool, ``logits > 0``.
        iou_scores: (N,) SAM's predicted IoU of each mask.
        stability: (N,) stability score of each mask.
        points: (N, 2) the grid point (model-input pixels) that produced each mask.
    """
    logits: Tensor
    masks: Tensor
    iou_scores: Tensor
    stability: Tensor
    points: Tensor

    def __len__(self) -> int:
        return len(self.masks)

    def select(self, idx: Tensor) -> 'Proposals':
        return Proposals(self.logits[idx], self.masks[idx], self.iou_scores[idx],
                         self.stability[idx], self.points[idx])


@TASK_UTILS.register_module()
class SAMGridProposals:
    """Point-grid proposals from a frozen SAM prompt decoder.

    Args:
        points_per_side: the grid is points_per_side x points_per_side over the valid
            image region (SAM's generator: 32).
        points_per_batch: points decoded per mask-decoder call (memory vs. speed).
        multimask_output: SAM's 3 masks per point (what the generator uses).
        pred_iou_thresh: keep masks whose predicted IoU exceeds this (generator: 0.88).
        stability_score_thresh: keep masks whose stability score reaches this (0.95).
        stability_score_offset: logit offset of the stability score (1.0).
        nms_thresh: masks overlapping a better one by more than this IoU are duplicates
            (the generator's box-NMS threshold is 0.7).
        min_mask_area: drop masks smaller than this, in low-res pixels (1 = 16 input px).
        max_proposals: keep at most this many (by predicted IoU) after NMS; 0 = all.
        min_mask_region_area: the generator's post-processing: disconnected islands and
            holes smaller than this (low-res pixels) are removed from each kept mask, so a
            stray speck does not stretch the mask's box; 0 = off (the generator's default).
    """

    def __init__(self,
                 points_per_side: int = 32,
                 points_per_batch: int = 64,
                 multimask_output: bool = True,
                 pred_iou_thresh: float = 0.88,
                 stability_score_thresh: float = 0.95,
                 stability_score_offset: float = 1.0,
                 nms_thresh: float = 0.7,
                 min_mask_area: int = 1,
                 max_proposals: int = 0,
                 min_mask_region_area: int = 0) -> None:
        if points_per_side < 1 or points_per_batch < 1:
            raise ValueError('points_per_side and points_per_batch must be >= 1')
        self.points_per_side = points_per_side
        self.points_per_batch = points_per_batch
        self.multimask_output = multimask_output
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.nms_thresh = nms_thresh
        self.min_mask_area = min_mask_area
        self.max_proposals = max_proposals
        self.min_mask_region_area = min_mask_region_area

    def grid(self, input_size: Tuple[int, int], device=None) -> Tensor:
        """(P, 2) grid points (x, y) in model-input pixels over the valid region (H_i, W_i)."""
        pts = torch.as_tensor(build_point_grid(self.points_per_side), dtype=torch.float32,
                              device=device)
        return pts * pts.new_tensor([input_size[1], input_size[0]])

    @torch.no_grad()
    def __call__(self, decoder, embedding: Tensor, input_size: Tuple[int, int]) -> Proposals:
        """Proposals of one image.

        Args:
            decoder: a :class:`SAMPromptDecoder` or :class:`SAM2PromptDecoder`
                (``predict_point_masks``, ``img_size``).
            embedding: (1, D, h, w) SAM embedding of the image, or SAM 2's tuple.
            input_size: (H_i, W_i) valid region of the padded S x S input.

        Returns:
            :class:`Proposals`, possibly empty.
        """
        image_embed = embedding if isinstance(embedding, Tensor) else embedding[0]  # SAM 2
        pts = self.grid(input_size, image_embed.device)
        side = image_embed.shape[-1] * 4
        scale = side / decoder.img_size
        valid = torch.zeros(side, side, dtype=torch.bool, device=image_embed.device)
        valid[:int(-(-input_size[0] * scale // 1)), :int(-(-input_size[1] * scale // 1))] = True
        kept = []
        for chunk in pts.split(self.points_per_batch):
            logits, iou = decoder.predict_point_masks(embedding, chunk[:, None],
                                                      multimask_output=self.multimask_output)
            k = logits.shape[1]
            logits = logits.flatten(0, 1).masked_fill(~valid, _OUTSIDE)
            iou = iou.flatten()
            stab = calculate_stability_score(logits, 0.0, self.stability_score_offset)
            masks = logits > 0
            ok = ((iou > self.pred_iou_thresh) & (stab >= self.stability_score_thresh)
                  & (masks.flatten(1).sum(1) >= self.min_mask_area))
            kept.append(Proposals(logits[ok], masks[ok], iou[ok], stab[ok],
                                  chunk.repeat_interleave(k, 0)[ok]))
        props = Proposals(*(torch.cat([getattr(p, f) for p in kept])
                            for f in ('logits', 'masks', 'iou_scores', 'stability', 'points')))
        keep = mask_nms(props.masks, props.iou_scores, self.nms_thresh)
        if self.max_proposals:
            keep = keep[:self.max_proposals]
        props = props.select(keep)
        return clean_regions(props, self.min_mask_region_area) if self.min_mask_region_area \
            else props


def clean_regions(props: Proposals, area: int) -> Proposals:
    """SAM's ``remove_small_regions`` (islands, then holes, below ``area`` low-res pixels)
    on each proposal; the logits follow the cleaned masks (removed pixels <= -1, filled
    ones >= 1), so the upsampled masks and their boxes do too."""
    if not len(props):
        return props
    cleaned = []
    for m in props.masks.cpu().numpy():
        m, _ = remove_small_regions(m, area, mode='islands')
        m, _ = remove_small_regions(m, area, mode='holes')
        cleaned.append(torch.from_numpy(m))
    masks = torch.stack(cleaned).to(props.masks.device)
    logits = torch.where(masks, props.logits.clamp(min=1.0), props.logits.clamp(max=-1.0))
    logits = torch.where(masks == props.masks, props.logits, logits)
    return Proposals(logits, masks, props.iou_scores, props.stability, props.points)
