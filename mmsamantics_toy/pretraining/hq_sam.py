"""HQ-SAM's training of its new decoder parts on top of the frozen toy SAM.

HQ-SAM (Ke et al., "Segment Anything in High Quality", NeurIPS 2023, §3.2-3.3, and the
authors' ``train/train.py``) keeps every SAM weight frozen and learns only what it adds to
the mask decoder: the HQ output token (``hf_token``) with its 3-layer MLP (``hf_mlp``), and
the HQ feature fusing the embedding with the early ViT feature (``compress_vit_feat``,
``embedding_encoder``, ``embedding_maskfeature``). Its recipe, followed here:

- one prompt type per image, drawn at random: the instances' boxes, or 10 random points
  inside each mask (boxes when one of the image's masks has fewer pixels, as HQ-SAM drops
  point prompts then);
- the loss reads the HQ token's mask alone (``hq_token_only=True``): BCE + dice on points
  drawn by PointRend's uncertainty sampling from the low-res logits (3x oversampling, 75 %
  most uncertain), with the same density of points as HQ-SAM's 112^2 on 256^2 logits;
- Adam, lr 1e-3, divided by 10 after epoch 10 of 12, batch 4 images.

Departures, for the toy world: HQ-SAM's third prompt type, noisy masks, is not drawn by
default, because the toy SAM (:mod:`.promptable_sam`) was trained with box and point
prompts only: its frozen mask-prompt path (``mask_downscaling``) is untrained, so a mask
prompt would feed the frozen decoder embeddings it never saw. As the image encoder is frozen,
each image is encoded once before training; HQ-SAM's flip and large-scale-jitter
augmentations, which would need re-encoding, are left out.

No class label is read: the instances come from :func:`load_prompt_instances`, which drops
the category ids on loading. The output is SAM's checkpoint plus the HQ weights under
``mask_decoder.*``, merged as HQ-SAM's training script does: the layout of
``sam_hq_vit_b.pth``, loaded strictly by :class:`HQSAMPromptDecoder` and
:class:`SAMImageEncoder` with ``hq_interm=True``.

Shape shorthand: N instances of one image, S input side (tiny 256), L = S / 4 low-res mask
side, h = w = S / 16, D prompt width (tiny 64), C ViT width (tiny 96), K points per mask.
"""
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmcv.ops import point_sample
from mmdet.models.utils import get_uncertain_point_coords_with_randomness
from mmengine.logging import print_log
from torch import Tensor, nn

from mmsamantics.models.backbones.sam_image_encoder import SAMImageEncoder
from mmsamantics.models.matching.mask_ops import mask_iou
from mmsamantics.models.sam.hq_sam_prompt_decoder import _HQ_KEYS, HQSAMPromptDecoder
from mmsamantics.models.sam.presets import checkpoint_hint
from mmsamantics.models.sam.sam_prompt_decoder import SAMPromptDecoder
from mmsamantics.utils.checkpoint import load_state_dict_file, load_strict

from .promptable_sam import dice_loss, load_prompt_instances

# One instance set: (embedding (1, D, h, w), interm (1, h, w, C), boxes (N, 4), masks (N, S, S))
Instances = Tuple[Tensor, Tensor, Tensor, Tensor]
PROMPTS = ('box', 'point')
# HQ-SAM samples 112^2 points on its 256^2 low-res logits: this fraction of the logit cells
_POINT_DENSITY = (112 / 256) ** 2


def hq_named_parameters(dec: HQSAMPromptDecoder) -> List[Tuple[str, nn.Parameter]]:
    """The parameters HQ-SAM adds to SAM's mask decoder (names relative to it)."""
    return [(n, p) for n, p in dec.mask_decoder.named_parameters()
            if n.split('.')[0] in _HQ_KEYS]


def build_toy_hq_sam(sam_checkpoint: str, preset: str = 'tiny'
                     ) -> Tuple[SAMImageEncoder, HQSAMPromptDecoder, Dict[str, Tensor]]:
    """SAM's weights in HQ-SAM's modules, with only the HQ parameters trainable.

    Args:
        sam_checkpoint: a plain SAM checkpoint (official layout), e.g. the toy SAM.
        preset: SAM size preset of the checkpoint.

    Returns:
        the frozen encoder (``hq_interm=True``), the HQ decoder (SAM's prompt encoder and
        decoder weights loaded strictly, the HQ parts at PyTorch's default initialisation,
        as HQ-SAM's) and the SAM state dict.
    """
    state = load_state_dict_file(sam_checkpoint, checkpoint_hint(preset))
    hq = sorted({k for k in state for h in _HQ_KEYS if k.startswith(f'mask_decoder.{h}.')})
    if hq:
        raise ValueError(f'{sam_checkpoint} already holds HQ-SAM weights ({hq[0]}, ...); '
                         'HQ-SAM is trained from a plain SAM checkpoint: pass that one '
                         '(e.g. checkpoints/sam_tiny_toy.pth)')
    enc = SAMImageEncoder(preset=preset, checkpoint=sam_checkpoint, hq_interm=True)
    dec = HQSAMPromptDecoder(preset=preset)
    load_strict(dec.prompt_encoder, state, 'prompt_encoder.', source=sam_checkpoint)
    own_hq = {f'mask_decoder.{n}': v for n, v in dec.mask_decoder.state_dict().items()
              if n.split('.')[0] in _HQ_KEYS}
    load_strict(dec.mask_decoder, {**state, **own_hq}, 'mask_decoder.', source=sam_checkpoint)
    for _, p in hq_named_parameters(dec):
        p.requires_grad_(True)
    return enc, dec, state


@torch.no_grad()
def encode_instances(enc: SAMImageEncoder,
                     data: Sequence[Tuple[Tensor, Tensor, Tensor]]) -> List[Instances]:
    """Each image of ``data`` (:func:`load_prompt_instances`) encoded once by the frozen
    encoder; images without instances are dropped."""
    out = []
    for img, boxes, masks in data:
        if len(boxes):
            emb, interm = enc(img[None])[-1]
            out.append((emb, interm, boxes, masks))
    return out


def _encode_prompts(dec: HQSAMPromptDecoder, boxes: Tensor, masks: Tensor, prompt: str,
                    num_points: int) -> Tuple[Tensor, Tensor]:
    """Sparse (N, P, D) and dense (N, D, h, w) prompt embeddings of N instances."""
    if prompt == 'box':
        return dec.prompt_encoder(points=None, boxes=boxes, masks=None)
    coords = []
    for m in masks:
        ys, xs = torch.nonzero(m, as_tuple=True)
        j = torch.randperm(len(ys))[:num_points]
        coords.append(torch.stack([xs[j], ys[j]], 1).float() + 0.5)  # pixel centres
    pts = torch.stack(coords)  # (N, K, 2)
    labels = torch.ones(pts.shape[:2], dtype=torch.int)  # all foreground clicks
    return dec.prompt_encoder(points=(pts, labels), boxes=None, masks=None)


def _decode(dec: HQSAMPromptDecoder, emb: Tensor, interm: Tensor, sparse: Tensor,
            dense: Tensor, hq_token_only: bool) -> Tensor:
    """Low-res mask logits (N, 1, L, L): the HQ token's, or SAM's + HQ's (HQ-SAM's default)."""
    low, _ = dec.mask_decoder(
        image_embeddings=emb, image_pe=dec.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
        multimask_output=False, hq_token_only=hq_token_only, interm_embeddings=(interm,))
    return low


def point_mask_loss(logits: Tensor, masks: Tensor) -> Tensor:
    """HQ-SAM's mask loss: BCE + dice on uncertainty-sampled points.

    Args:
        logits: (N, 1, L, L) low-res mask logits. masks: (N, S, S) binary targets; both
            cover the same padded input frame, so normalised point coordinates fit both.

    Returns:
        scalar: mean BCE over points and masks + mean dice over masks.
    """
    num_points = max(1, round(_POINT_DENSITY * logits.shape[-2] * logits.shape[-1]))
    with torch.no_grad():
        coords = get_uncertain_point_coords_with_randomness(
            logits, torch.zeros(len(logits), dtype=torch.long), num_points, 3.0, 0.75)
        target = point_sample(masks[:, None].float(), coords).squeeze(1)
    point_logits = point_sample(logits, coords).squeeze(1)  # (N, P)
    return (F.binary_cross_entropy_with_logits(point_logits, target)
            + dice_loss(point_logits, target).mean())


def hq_loss(dec: HQSAMPromptDecoder, batch: Sequence[Instances], prompts: Sequence[str],
            rng: np.random.Generator, num_points: int = 10) -> Tensor:
    """Mean HQ loss over the images of ``batch``, each prompted by one type drawn from
    ``prompts`` (``'box'`` / ``'point'``)."""
    losses = []
    for emb, interm, boxes, masks in batch:
        prompt = prompts[int(rng.integers(len(prompts)))]
        if prompt == 'point' and int(masks.flatten(1).sum(1).min()) < num_points:
            prompt = 'box'  # HQ-SAM drops point prompts when a mask has too few pixels
        sparse, dense = _encode_prompts(dec, boxes, masks, prompt, num_points)
        losses.append(point_mask_loss(_decode(dec, emb, interm, sparse, dense, True), masks))
    return torch.stack(losses).mean()


@torch.no_grad()
def hq_mask_ious(sam_dec: SAMPromptDecoder, dec: HQSAMPromptDecoder,
                 data: Sequence[Instances]) -> Dict[str, float]:
    """Mean mask IoU with the ground truth of box-prompted masks (one per instance).

    Returns:
        ``sam``: the plain SAM decoder's single mask; ``hq_sam``: HQ-SAM's default mask
        (SAM's + the HQ token's logits, what the configs use); ``hq_token``: the HQ token's.
    """
    ious: Dict[str, List[float]] = dict(sam=[], hq_sam=[], hq_token=[])
    for emb, interm, boxes, masks in data:
        sparse, dense = dec.prompt_encoder(points=None, boxes=boxes, masks=None)
        lows = dict(sam=sam_dec.predict_masks(emb, boxes)[0],
                    hq_sam=_decode(dec, emb, interm, sparse, dense, False),
                    hq_token=_decode(dec, emb, interm, sparse, dense, True))
        for key, low in lows.items():
            pred = F.interpolate(low, masks.shape[-2:], mode='bilinear',
                                 align_corners=False)[:, 0] > 0
            ious[key] += mask_iou(pred, masks > 0).diagonal().tolist()
    return {k: float(np.mean(v)) for k, v in ious.items()}


def hq_sam_state_dict(sam_state: Dict[str, Tensor],
                      dec: HQSAMPromptDecoder) -> Dict[str, Tensor]:
    """SAM's checkpoint plus ``mask_decoder.<HQ key>`` weights: HQ-SAM's released layout."""
    state = dict(sam_state)
    state.update({f'mask_decoder.{n}': v.detach().clone()
                  for n, v in dec.mask_decoder.state_dict().items()
                  if n.split('.')[0] in _HQ_KEYS})
    return state


def _check_args(epochs: int, lr_drop_epoch: int, prompts: Sequence[str]) -> None:
    if epochs < 1:
        raise ValueError(f'epochs must be >= 1, got {epochs}')
    if lr_drop_epoch < 1:
        raise ValueError(f'lr_drop_epoch must be >= 1, got {lr_drop_epoch}')
    bad = sorted(set(prompts) - set(PROMPTS))
    if bad or not prompts:
        raise ValueError(f'prompts must be a non-empty subset of {list(PROMPTS)}, got '
                         f'{list(prompts)}')


def pretrain_toy_hq_sam(ann_file: str, img_dir: str, out: str, sam_checkpoint: str,
                        seed: int = 0, epochs: int = 12, lr_drop_epoch: int = 10,
                        batch_size: int = 4, lr: float = 1e-3,
                        prompts: Sequence[str] = PROMPTS, num_points: int = 10,
                        max_images: Optional[int] = None,
                        val: Optional[Tuple[str, str]] = None,
                        max_val_images: Optional[int] = None) -> dict:
    """Train HQ-SAM's parameters on a frozen SAM and write an HQ-SAM checkpoint.

    Args:
        ann_file / img_dir: COCO-format instances with masks (class ids dropped on loading).
        out: where to write the HQ-SAM ``.pth`` (official layout).
        sam_checkpoint: the plain SAM checkpoint to start from (kept frozen; tiny preset).
        seed: fixes the HQ initialisation, prompt draws and sampled points.
        epochs / lr_drop_epoch / batch_size / lr: Adam schedule, lr x 0.1 after
            ``lr_drop_epoch`` epochs (HQ-SAM: 12 / 10 / 4 / 1e-3).
        prompts: prompt types drawn per image (``'box'``, ``'point'``).
        num_points: K clicks per mask for a point prompt (HQ-SAM: 10).
        max_images / max_val_images: use only the first images (tests).
        val: ``(ann_file, img_dir)`` of held-out instances: box-prompted mask IoU of SAM
            and HQ-SAM (:func:`hq_mask_ious`) before and after training.

    Returns:
        dict: ``first_loss`` / ``last_loss`` (mean HQ loss of the first / last epoch),
        ``val_before`` / ``val_after`` (None without ``val``), ``images``, ``seconds``.
    """
    _check_args(epochs, lr_drop_epoch, prompts)
    t0 = time.time()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    enc, dec, sam_state = build_toy_hq_sam(sam_checkpoint)
    data = encode_instances(enc, load_prompt_instances(ann_file, img_dir, enc.img_size,
                                                       max_images))
    val_data, sam_dec = None, None
    if val is not None:
        val_data = encode_instances(enc, load_prompt_instances(*val, enc.img_size,
                                                               max_val_images))
        sam_dec = SAMPromptDecoder(preset=enc.preset, checkpoint=sam_checkpoint)
    before = None if val_data is None else hq_mask_ious(sam_dec, dec, val_data)
    params = [p for _, p in hq_named_parameters(dec)]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, lr_drop_epoch, gamma=0.1)
    epoch_losses = []
    for epoch in range(epochs):
        losses = []
        order = rng.permutation(len(data))
        for s in range(0, len(data), batch_size):
            loss = hq_loss(dec, [data[j] for j in order[s:s + batch_size]], prompts, rng,
                           num_points)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        sched.step()
        epoch_losses.append(float(np.mean(losses)))
        print_log(f'[toy HQ-SAM training] epoch {epoch + 1}/{epochs}: HQ loss '
                  f'{epoch_losses[-1]:.4f} ({time.time() - t0:.0f}s)', logger='current')
    after = None if val_data is None else hq_mask_ious(sam_dec, dec, val_data)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    torch.save(hq_sam_state_dict(sam_state, dec), out)
    return dict(first_loss=epoch_losses[0], last_loss=epoch_losses[-1], val_before=before,
                val_after=after, images=len(data), seconds=time.time() - t0)
