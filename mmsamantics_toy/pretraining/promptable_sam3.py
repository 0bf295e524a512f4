"""Stage 2 of the toy SAM 3: its SAM 1-task mask path trained on class-agnostic prompts.

SAM 3 keeps SAM 2's promptable segmentation ("SAM 1 task": a box or points on an image, one
mask out): its tracker's prompt encoder and mask decoder read a second simple-FPN neck
(``sam2_convs``) on the same Perception Encoder (Carion et al., "SAM 3: Segment Anything
with Concepts"; ``sam3.model.sam1_task_predictor``). This stage trains that path on the toy
world with the prompts and losses of the toy SAM's promptable stage (:mod:`.promptable_sam`):
jittered box prompts and single interior points, loss 20 * focal + dice plus the MSE of the
predicted IoU, **no class information** (the annotation file is read through
:func:`~.promptable_sam.class_agnostic_coco`). Two parts of SAM 2's training
recipe, which SAM 3's tracker inherits with SAM 2's decoder (Ravi et al., "SAM 2", appendix;
its released training configs), are added, and the second neck learns slowly:

- a single point is ambiguous, so it gets the 3 multimask outputs and only the best of them
  (lowest 20 * focal + dice) is supervised, the IoU head on all three (SAM's §3, SAM 2's
  ``multimask_output_in_sam``); a box gets the single-mask output. Without it the multimask
  tokens stay random, and the released decoder falls back to them at inference whenever the
  single mask is unstable (``dynamic_multimask_via_stability``);
- the gradient norm is clipped to 0.1 (SAM 2's ``gradient_clip``);
- the second neck learns at 0.1 x the learning rate (``neck_lr_mult``). At the full rate
  the decoder never leaves the loss's early phase (every mask empty while 20 * focal
  outweighs dice; val box-prompted IoU 0.004 after 20 epochs, against 0.689 at 0.1 x;
  docs/toy_semantics.md measures each change).

Trained: the prompt encoder, the mask decoder, ``no_mem_embed`` and, at ``neck_lr_mult``,
``sam2_convs`` (started from the stage-1 ``convs``, the same layout). The Perception Encoder
(``trunk``) is frozen by default (it carries stage 1, :mod:`.contrastive_pe`, and runs once
per image); with ``trunk_lr_mult`` > 0 it is fine-tuned at that fraction of the learning
rate, on the same class-agnostic prompts: the stand-in for SAM 3's detector stages, which
fine-tune its Perception Encoder on detection and segmentation data before the tracker's
SAM 1-task decoder is trained on the frozen backbone (the toy recipe skips the detector
stages). The detector's neck (``convs``) keeps stage 1's weights either way: the mask path
does not read it, so no loss reaches it. Inputs are made the SAM way (longest side resized to
S, zero-padded bottom/right) with SAM 3's normalisation (mean = std = 127.5); box prompts
are two corners with labels 2 and 3, as :class:`~mmsamantics.models.sam.SAM3PromptDecoder`
(and ``sam3``'s interactive predictor) encode them.

The result is written in the released ``sam3.pt`` layout. ``detector.geometry_encoder.*``
(SAM 3's exemplar encoder) is NOT trained here: SAM 3 trains it in its detector stage on
noun-phrase detection, which this toy recipe does not reproduce; the file holds the seeded
random weights of :func:`~mmsamantics.models.sam3.build_sam3_geometry_encoder`.

Shape shorthand: B images, N prompts of one image, C the ViT width (96), D the neck / decoder
width (64), S input side (224), h = S / 14 (16), L = 4h the low-res mask side.
"""
import os
import os.path as osp
import time
from typing import List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor, nn

from mmsamantics.models.matching.mask_ops import mask_iou
from mmsamantics.models.sam.sam3_prompt_decoder import SAM3PromptDecoder
from mmsamantics.models.sam3.sam3_presets import (build_sam3_geometry_encoder,
                                                  build_sam3_vision_backbone)
from mmsamantics.utils.checkpoint import load_state_dict_file, load_strict
from .contrastive_pe import PIXEL_MEAN, PIXEL_STD, TEXT_PREFIX, VISION_PREFIX
from .promptable_sam import (dice_loss, focal_loss, interior_points, jittered_boxes,
                             load_prompt_instances, mask_loss)

_PE_HINT = 'Write it with stage 1 (tools/misc/pretrain_toy_sam3.py, or pretrain_toy_sam3_pe).'
_NORM = torch.full((3, 1, 1), PIXEL_MEAN), torch.full((3, 1, 1), PIXEL_STD)
INTERACTIVE_LEVELS = (2, 0, 1)  # sam2_convs levels read as (image_embed, feat_s0, feat_s1)
NECK_LR_MULT = 0.1  # the second neck learns at 0.1 x lr (module docstring)


def prompted_sam3_loss(dec: SAM3PromptDecoder, embedding: tuple, boxes: Tensor, masks: Tensor,
                       prompt: str, box_jitter: float, size: int, ious: list) -> Tensor:
    """SAM's loss for N instances of one image, prompted by boxes or one point each, through
    SAM 3's decoder as its interactive predictor calls it.

    Args:
        embedding: ``(image_embed (1, D, h, w), feat_s0 (1, D, 4h, 4w), feat_s1 (1, D, 2h,
            2w))`` of one image. boxes: (N, 4) input pixels. masks: (N, S, S) float.
        ious: receives the IoU of each predicted mask (monitoring).
    """
    if prompt == 'box':
        sparse, dense = dec._prompts(jittered_boxes(boxes, box_jitter))
        low, iou_pred = dec._decode(embedding, sparse, dense, multimask_output=False)
        return mask_loss(low, iou_pred, masks, size, ious)
    coords = interior_points(masks)
    sparse, dense = dec.prompt_encoder(
        points=(coords, torch.ones(len(coords), 1, dtype=torch.int)), boxes=None, masks=None)
    low, iou_pred = dec._decode(embedding, sparse, dense, multimask_output=True)
    return best_of_multimask_loss(low, iou_pred, masks, size, ious)


def best_of_multimask_loss(low: Tensor, iou_pred: Tensor, masks: Tensor, size: int,
                           ious: list) -> Tensor:
    """SAM's loss for an ambiguous prompt: 20 * focal + dice of the best of K outputs (only
    it is supervised, so each output can settle on one reading of the prompt), plus the MSE
    of the predicted IoU of all K.

    Args:
        low: (N, K, L, L) low-res mask logits. iou_pred: (N, K). masks: (N, S, S) float.
        ious: receives the IoU of each instance's best output (monitoring).
    """
    n, k = low.shape[:2]
    logits = F.interpolate(low, (size, size), mode='bilinear', align_corners=False)
    target = masks[:, None].expand(-1, k, -1, -1)
    flat, flat_t = logits.flatten(0, 1), target.flatten(0, 1)
    per = (20 * focal_loss(flat, flat_t) + dice_loss(flat, flat_t)).view(n, k)
    with torch.no_grad():
        pred, gt = logits > 0, target > 0
        iou = (pred & gt).flatten(2).sum(2) / (pred | gt).flatten(2).sum(2).clamp(min=1)
    best = per.argmin(1)
    rows = torch.arange(n)
    ious += iou[rows, best].tolist()
    return (per[rows, best] + F.mse_loss(iou_pred, iou, reduction='none').mean(1)).mean()


def _frozen_trunk_features(trunk: nn.Module, images: list, chunk: int = 16) -> Tensor:
    """(B, C, h, w) last-block features of the frozen trunk for every (3, S, S) image."""
    with torch.no_grad():
        return torch.cat([trunk(torch.stack(images[s:s + chunk]))[-1]
                          for s in range(0, len(images), chunk)])


def _sam3_state(pe_state: dict, vision: nn.Module, geometry: nn.Module,
                dec: SAM3PromptDecoder) -> dict:
    """The released ``sam3.pt`` layout: detector (vision + language backbones, geometry
    encoder) and tracker (SAM 1-task prompt encoder, mask decoder, ``no_mem_embed``)."""
    state = {k: v for k, v in pe_state.items() if k.startswith(TEXT_PREFIX)}
    parts = ((VISION_PREFIX, vision), ('detector.geometry_encoder.', geometry),
             ('tracker.sam_prompt_encoder.', dec.prompt_encoder),
             ('tracker.sam_mask_decoder.', dec.mask_decoder))
    for prefix, module in parts:
        state.update({prefix + k: v for k, v in module.state_dict().items()})
    state['tracker.no_mem_embed'] = dec.no_mem_embed.data  # (1, 1, D) as Sam3TrackerBase
    return {k: v.detach().clone() for k, v in state.items()}


@torch.no_grad()
def box_prompt_iou(checkpoint: str, ann_file: str, img_dir: str,
                   max_images: Optional[int] = None) -> float:
    """Mean mask IoU with the ground truth of box-prompted masks (one per instance), through
    the classes the configs use: :class:`~mmsamantics.models.backbones.SAM3ImageEncoder`
    (interactive) and :meth:`SAM3PromptDecoder.predict_masks` (single mask, with the
    released decoder's fallback to the most stable multimask output)."""
    from mmsamantics.models.backbones.sam3_image_encoder import SAM3ImageEncoder
    enc = SAM3ImageEncoder(preset='toy', checkpoint=checkpoint, embedding='interactive')
    dec = SAM3PromptDecoder(preset='toy', checkpoint=checkpoint)
    ious = []
    for img, boxes, masks in load_prompt_instances(ann_file, img_dir, dec.img_size,
                                                   max_images, *_NORM):
        if len(boxes):
            low, _ = dec.predict_masks(enc(img[None])[-1], boxes)
            pred = F.interpolate(low, masks.shape[-2:], mode='bilinear',
                                 align_corners=False)[:, 0] > 0
            ious += mask_iou(pred, masks > 0).diagonal().tolist()
    return float(np.mean(ious))


def _train_epoch(vision: nn.Module, dec: SAM3PromptDecoder, data: list, tops: Optional[Tensor],
                 order: np.ndarray, batch_size: int, optim: tuple, box_jitter: float,
                 point_ratio: float) -> List[float]:
    """One pass over ``data`` in ``order``: per batch of images, the trunk's last block
    (precomputed ``tops`` (N, C, h, w) when frozen), the second neck's levels and SAM's loss
    over every instance, half prompted by boxes, half by one point; ``optim`` = (optimizer,
    scheduler, max gradient norm or 0). Returns the IoU of every predicted mask
    (monitoring)."""
    opt, sched, grad_clip = optim
    params = [p for g in opt.param_groups for p in g['params']]
    ious: List[float] = []
    for s in range(0, len(data), batch_size):
        idx = order[s:s + batch_size]
        top = (tops[torch.as_tensor(idx)] if tops is not None  # (B, C, h, w)
               else vision.trunk(torch.stack([data[j][0] for j in idx]))[-1])
        levels = [vision.sam2_convs[i](top) for i in INTERACTIVE_LEVELS]
        loss = 0.0
        for k, j in enumerate(idx):
            _, boxes, masks = data[j]
            if len(boxes) == 0:
                continue
            emb = tuple(x[k:k + 1] for x in levels)
            # half box, half point prompts, as the toy SAM (and SAM) mix them
            use_point = torch.rand(len(boxes)) < point_ratio
            for sel, prompt in ((~use_point, 'box'), (use_point, 'point')):
                if sel.any():
                    loss = loss + prompted_sam3_loss(
                        dec, emb, boxes[sel], masks[sel].float(), prompt, box_jitter,
                        dec.img_size, ious)
        opt.zero_grad()
        (loss / len(idx)).backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        sched.step()
    return ious


def _param_groups(vision: nn.Module, dec: SAM3PromptDecoder, lr: float, trunk_lr_mult: float,
                  neck_lr_mult: float) -> List[dict]:
    """AdamW groups: the decoder (prompt encoder, mask decoder, ``no_mem_embed``) at ``lr``;
    the trunk and the second neck at their fractions of it, made trainable only when > 0."""
    groups = [dict(params=list(dec.parameters()), lr=lr)]
    for part, mult in (('trunk', trunk_lr_mult), ('sam2_convs', neck_lr_mult)):
        if mult > 0:
            module = getattr(vision, part).requires_grad_(True)
            groups.append(dict(params=list(module.parameters()), lr=lr * mult))
    return groups


def pretrain_toy_sam3(ann_file: str, img_dir: str, pe_file: str, out_file: str,
                      epochs: int = 8, batch_size: int = 8, lr: float = 2e-3, seed: int = 0,
                      box_jitter: float = 0.1, point_ratio: float = 0.5,
                      max_images: Optional[int] = None, trunk_lr_mult: float = 0.0,
                      neck_lr_mult: float = NECK_LR_MULT, grad_clip: float = 0.1) -> dict:
    """Train the toy SAM 3's mask path on its stage-1 encoder; save the sam3.pt layout.

    Args:
        ann_file / img_dir: a COCO-format dataset with instance masks (class ids unused).
        pe_file: stage 1's checkpoint (:func:`~.contrastive_pe.pretrain_toy_sam3_pe`).
        out_file: where to write the ``.pth`` state dict.
        epochs / batch_size / lr: AdamW schedule (one-cycle, cosine decay to 0).
        seed: makes the weights reproducible.
        box_jitter: boxes are perturbed by up to this fraction of their side.
        point_ratio: fraction of instances prompted by a single interior point instead.
        max_images: use only the first N images (tests).
        trunk_lr_mult: the trunk's learning rate as a fraction of ``lr`` (the stand-in for
            SAM 3's detector stages, see the module docstring); 0 = frozen, bit-identical
            to stage 1.
        neck_lr_mult: the second neck's (``sam2_convs``, started from the stage-1
            ``convs``) learning rate as a fraction of ``lr``; 0 = kept at that copy.
        grad_clip: the gradient's maximal L2 norm (SAM 2's 0.1, see the module docstring);
            0 = no clipping.

    Returns:
        dict with the first and last epoch's mean IoU of the predicted masks on the training
        prompts, the wall time and the number of images.
    """
    if epochs < 1:
        raise ValueError(f'epochs must be >= 1, got {epochs}')
    for name, mult in (('trunk_lr_mult', trunk_lr_mult), ('neck_lr_mult', neck_lr_mult)):
        if mult < 0:
            raise ValueError(f'{name} must be >= 0, got {mult}')
    if grad_clip < 0:
        raise ValueError(f'grad_clip must be >= 0 (0 = no clipping), got {grad_clip}')
    pe_state = load_state_dict_file(pe_file, _PE_HINT)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    vision = build_sam3_vision_backbone('toy', interactive=True)
    for part in ('trunk', 'convs'):
        load_strict(getattr(vision, part), pe_state, f'{VISION_PREFIX}{part}.', source=pe_file)
    vision.sam2_convs.load_state_dict(vision.convs.state_dict())  # warm start, same layout
    vision.requires_grad_(False).eval()
    geometry = build_sam3_geometry_encoder('toy')  # seeded random weights, not trained
    dec = SAM3PromptDecoder(preset='toy')
    dec.requires_grad_(True)
    dec.mask_decoder.train()  # the single-mask token, without the inference-time fallback
    size = dec.img_size
    data = load_prompt_instances(ann_file, img_dir, size, max_images, *_NORM)
    groups = _param_groups(vision, dec, lr, trunk_lr_mult, neck_lr_mult)
    tops = (None if trunk_lr_mult > 0
            else _frozen_trunk_features(vision.trunk, [d[0] for d in data]))
    opt = torch.optim.AdamW(groups, weight_decay=1e-4)
    steps = epochs * int(np.ceil(len(data) / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[g['lr'] for g in groups],
                                                total_steps=steps, pct_start=0.1)
    t0, mious = time.time(), []
    for epoch in range(epochs):
        ious = _train_epoch(vision, dec, data, tops, rng.permutation(len(data)), batch_size,
                            (opt, sched, grad_clip), box_jitter, point_ratio)
        mious.append(float(np.mean(ious)))
        print_log(f'[toy SAM 3 promptable] epoch {epoch + 1}/{epochs}: mean mask IoU '
                  f'{mious[-1]:.3f} ({time.time() - t0:.0f}s)', logger='current')
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    torch.save(_sam3_state(pe_state, vision, geometry, dec), out_file)
    return dict(first_iou=mious[0], mean_iou=mious[-1], seconds=time.time() - t0,
                images=len(data))
