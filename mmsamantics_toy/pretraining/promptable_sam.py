"""Class-agnostic promptable-segmentation pretraining of the tiny SAM on the toy world.

Real SAM is pretrained on SA-1B to segment whatever a prompt points at, without class labels;
a random-weight SAM neither segments nor produces mask tokens that describe the prompted
object, so the toy world would not exercise what the paper studies. This trains the tiny
preset the way SAM was trained, with box and point prompts and NO class information: image
encoder + prompt encoder + mask decoder, loss 20 * focal + dice on the single-mask output
plus MSE of the predicted IoU, prompts mixed between jittered boxes and single interior points
(Kirillov et al., "Segment Anything", §3 and appendix A).

Like SAM's, the image encoder starts from MAE weights (:mod:`.mae`) when ``init_encoder``
is given. No class label reaches the training: the annotation file is read through
:func:`class_agnostic_coco`, which replaces every category id with one ``object`` class
before anything else sees it.

The result is saved in the official checkpoint layout (``image_encoder.*``,
``prompt_encoder.*``, ``mask_decoder.*``), so configs load it exactly like
``sam_vit_b_01ec64.pth``.

Shape shorthand: B images, N boxes, S input side, L = 4 * S / 16 low-res mask side.
"""
import os
import os.path as osp
import time
from typing import List, Optional, Tuple

import mmcv
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from pycocotools.coco import COCO

from mmsamantics.models.backbones.sam_image_encoder import SAMImageEncoder
from mmsamantics.models.sam.sam_prompt_decoder import SAMPromptDecoder
from mmsamantics.utils.checkpoint import load_state_dict_file, load_strict
from mmsamantics.utils.images import load_image_checked

_MAE_HINT = ('Write it with the MAE stage (tools/misc/pretrain_toy_sam.py, or '
             'pretrain_sam_encoder_mae), or start from random weights: init_encoder=None.')
_MEAN = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
_STD = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)


def class_agnostic_coco(ann_file: str) -> COCO:
    """The instances of a COCO file with their classes removed: every annotation's
    ``category_id`` becomes 1, the one category ``object`` (only masks and boxes are used)."""
    import json
    with open(ann_file) as f:
        data = json.load(f)
    for ann in data.get('annotations', []):
        ann['category_id'] = 1
    data['categories'] = [dict(id=1, name='object')]
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    return coco


def _prepare(coco: COCO, img_id: int, img_dir: str, size: int,
             mean: torch.Tensor = _MEAN, std: torch.Tensor = _STD
             ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One image as SAM sees it, its boxes in input pixels and masks on the padded frame
    (mean / std: (3, 1, 1) normalisation on 0..255, SAM's by default).

    Returns:
        img (3, S, S) normalised and zero-padded; boxes (N, 4); masks (N, S, S) uint8.
    """
    info = coco.imgs[img_id]
    bgr = load_image_checked(osp.join(img_dir, info['file_name']))
    h, w = bgr.shape[:2]
    rgb = mmcv.imrescale(bgr, (size, size), backend='cv2')[..., ::-1]
    nh, nw = rgb.shape[:2]
    x = (torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() - mean) / std
    img = F.pad(x, (0, size - nw, 0, size - nh))
    boxes, masks = [], []
    for ann in coco.imgToAnns[img_id]:
        bx, by, bw, bh = ann['bbox']
        if bw < 1 or bh < 1:
            continue
        m = coco.annToMask(ann).astype(np.uint8)
        m = mmcv.imresize(m, (nw, nh), interpolation='nearest')
        full = np.zeros((size, size), np.uint8)  # uint8: 4x less memory than float
        full[:nh, :nw] = m
        if not full.any():  # vanished in the resize: nothing to segment, no point to click
            continue
        boxes.append([bx * nw / w, by * nh / h, (bx + bw) * nw / w, (by + bh) * nh / h])
        masks.append(full)
    return (img, torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            torch.from_numpy(np.stack(masks)) if masks else
            torch.zeros(0, size, size, dtype=torch.uint8))


def load_prompt_instances(ann_file: str, img_dir: str, size: int,
                          max_images: Optional[int] = None,
                          mean: torch.Tensor = _MEAN, std: torch.Tensor = _STD
                          ) -> List[Tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The annotated images of a COCO file as SAM sees them, class ids dropped on loading
    (:func:`class_agnostic_coco`), in sorted image-id order.

    Args:
        ann_file / img_dir: a COCO-format dataset with instance masks.
        size: S, the model's input side.
        max_images: keep only the first N annotated images (tests).
        mean / std: (3, 1, 1) input normalisation on 0..255 (SAM's by default).

    Returns:
        one ``(img (3, S, S), boxes (N, 4), masks (N, S, S) uint8)`` per image (see
        :func:`_prepare`).
    """
    coco = class_agnostic_coco(ann_file)
    img_ids: List[int] = [i for i in sorted(coco.imgs) if coco.imgToAnns[i]][:max_images]
    if not img_ids:
        raise ValueError(f'{ann_file} has no annotated image to pretrain on')
    return [_prepare(coco, i, img_dir, size, mean, std) for i in img_ids]


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25,
               gamma: float = 2.0) -> torch.Tensor:
    """SAM's sigmoid focal loss per mask: (N, ...) logits and 0/1 targets -> (N,) means."""
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction='none')
    pt = p * target + (1 - p) * (1 - target)
    loss = ce * (1 - pt) ** gamma
    return ((alpha * target + (1 - alpha) * (1 - target)) * loss).flatten(1).mean(1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SAM's dice loss per mask (smoothed by 1): (N, ...) logits and targets -> (N,)."""
    p = logits.sigmoid().flatten(1)
    t = target.flatten(1)
    return 1 - (2 * (p * t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)


def jittered_boxes(boxes: torch.Tensor, box_jitter: float) -> torch.Tensor:
    """(N, 4) xyxy boxes, each side moved by up to ``box_jitter`` of the box's width or
    height, as SAM's training perturbs its box prompts."""
    wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)
    return boxes + wh * box_jitter * torch.empty_like(boxes).uniform_(-1, 1)


def interior_points(masks: torch.Tensor) -> torch.Tensor:
    """(N, S, S) masks -> (N, 1, 2) one random xy point inside each (pixel centres)."""
    pts = []
    for m in masks:
        ys, xs = torch.nonzero(m > 0, as_tuple=True)
        j = int(torch.randint(len(ys), ()))
        pts.append([float(xs[j]) + 0.5, float(ys[j]) + 0.5])
    return torch.tensor(pts)[:, None]


def mask_loss(low: torch.Tensor, iou_pred: torch.Tensor, masks: torch.Tensor, size: int,
              ious: list) -> torch.Tensor:
    """SAM's loss of N single-mask predictions: 20 * focal + dice + MSE of the IoU.

    Args:
        low: (N, 1, L, L) low-res mask logits. iou_pred: (N, 1). masks: (N, S, S) float.
        ious: receives the IoU of each predicted mask (monitoring).
    """
    logits = F.interpolate(low, (size, size), mode='bilinear', align_corners=False)[:, 0]
    with torch.no_grad():
        pred, gt = logits > 0, masks > 0
        iou = (pred & gt).flatten(1).sum(1) / (pred | gt).flatten(1).sum(1).clamp(min=1)
        ious += iou.tolist()
    return (20 * focal_loss(logits, masks) + dice_loss(logits, masks)
            + F.mse_loss(iou_pred[:, 0], iou, reduction='none')).mean()


def prompted_mask_loss(dec: SAMPromptDecoder, emb: torch.Tensor, boxes: torch.Tensor,
                         masks: torch.Tensor, prompt: str, box_jitter: float, size: int,
                         ious: list) -> torch.Tensor:
    """SAM's loss for N instances of one image prompted by boxes or by one point each.

    Args:
        emb: (1, D, h, w) image embedding. boxes: (N, 4) input pixels. masks: (N, S, S).
        ious: receives the IoU of each predicted mask (monitoring).
    """
    if prompt == 'box':
        sparse, dense = dec.prompt_encoder(points=None, boxes=jittered_boxes(boxes, box_jitter),
                                           masks=None)
    else:
        coords = interior_points(masks)
        sparse, dense = dec.prompt_encoder(
            points=(coords, torch.ones(len(coords), 1, dtype=torch.int)), boxes=None,
            masks=None)
    low, iou_pred = dec.mask_decoder(
        image_embeddings=emb, image_pe=dec.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
        multimask_output=False)
    return mask_loss(low, iou_pred, masks, size, ious)


def pretrain_toy_sam(ann_file: str, img_dir: str, out_file: str, epochs: int = 8,
                     batch_size: int = 8, lr: float = 2e-3, seed: int = 0,
                     box_jitter: float = 0.1, point_ratio: float = 0.5,
                     max_images: Optional[int] = None,
                     init_encoder: Optional[str] = None) -> dict:
    """Train the tiny SAM on box-prompted segmentation and save an official-layout checkpoint.

    Args:
        ann_file / img_dir: a COCO-format dataset with instance masks (class ids unused).
        out_file: where to write the ``.pth`` state dict.
        epochs / batch_size / lr: AdamW schedule (cosine decay to 0).
        seed: makes the weights reproducible.
        box_jitter: boxes are perturbed by up to this fraction of their side, as SAM's
            training does, so the model also segments from imprecise DETR boxes.
        point_ratio: fraction of instances prompted by a single interior point instead.
        max_images: use only the first N images (tests).
        init_encoder: ``image_encoder.*`` weights to start from (the MAE stage's output,
            :func:`pretrain_sam_encoder_mae`); None = random initialisation.

    Returns:
        dict with the final mean IoU of the predicted masks on the training prompts and the
        wall time.
    """
    if epochs < 1:
        raise ValueError(f'epochs must be >= 1, got {epochs}')
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    enc = SAMImageEncoder(preset='tiny', frozen=False)
    if init_encoder is not None:
        state = load_state_dict_file(init_encoder, _MAE_HINT)
        load_strict(enc.encoder, state, prefix='image_encoder.', source=init_encoder)
    dec = SAMPromptDecoder(preset='tiny')
    for p in dec.parameters():
        p.requires_grad_(True)
    size = enc.img_size
    data = load_prompt_instances(ann_file, img_dir, size, max_images)
    params = list(enc.parameters()) + list(dec.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    steps = epochs * int(np.ceil(len(data) / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps,
                                                pct_start=0.1)
    t0, miou = time.time(), 0.0
    enc.train()
    for epoch in range(epochs):
        ious = []
        order = rng.permutation(len(data))
        for s in range(0, len(data), batch_size):
            batch = [data[j] for j in order[s:s + batch_size]]
            emb = enc(torch.stack([b[0] for b in batch]))[-1]
            loss = 0.0
            for k, (_, boxes, masks) in enumerate(batch):
                if len(boxes) == 0:
                    continue
                # Half of the instances are prompted by a jittered box, half by one point
                # inside the mask, as SAM mixes prompt types: a point forces the tokens to
                # carry what the object looks like, not only where its box is.
                use_point = torch.rand(len(boxes)) < point_ratio
                for sel, prompt in ((~use_point, 'box'), (use_point, 'point')):
                    if not sel.any():
                        continue
                    loss = loss + prompted_mask_loss(
                        dec, emb[k:k + 1], boxes[sel], masks[sel].float(), prompt, box_jitter,
                        size, ious)
            opt.zero_grad()
            (loss / len(batch)).backward()
            opt.step()
            sched.step()
        miou = float(np.mean(ious))
        print_log(f'[toy SAM pretraining] epoch {epoch + 1}/{epochs}: mean mask IoU {miou:.3f} '
                  f'({time.time() - t0:.0f}s)', logger='current')
    state = {f'image_encoder.{k}': v for k, v in enc.encoder.state_dict().items()}
    state.update({f'prompt_encoder.{k}': v for k, v in dec.prompt_encoder.state_dict().items()})
    state.update({f'mask_decoder.{k}': v for k, v in dec.mask_decoder.state_dict().items()})
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    torch.save(state, out_file)
    return dict(mean_iou=miou, seconds=time.time() - t0, images=len(data))
