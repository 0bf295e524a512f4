"""Masks from predicted boxes: SAM box prompts on the (cached) target embedding.

Shape shorthand: N boxes of one image, D prompt width, h = w = S / 16, (H0, W0) the
original image size, (Hi, Wi) the resized input size before padding.
"""
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.registry import MODELS

# SAM: a (B, D, h, w) tensor; SAM 2: (image_embed, feat_s0, feat_s1), each batch-first
Embedding = Union[Tensor, Sequence[Tensor]]

# Boxes per SAM mask-decoder call. The decoder's image side is shared by the prompts only up
# to its first image update (SharedImageMaskDecoder); the rest is per-box work that a large
# batch does not reduce, and on a CPU a large batch falls out of cache, while one box per
# call repeats the per-call work (dense positional encoding, prompt encoder). Measured with
# tools/analysis/benchmark_box_decoding.py (ViT-B geometry, 100 boxes, 1 CPU thread, two
# runs): 2 per call took 0.75-0.76x the CPU time of the one-box loop, 4: 0.70-0.82x, 100 in
# one call 1.10-1.24x. On GPUs one call of up to 100 boxes (2 GB peak at fp32) keeps the
# device busy (not measured yet).
BOXES_PER_CALL = dict(cpu=2, cuda=100)


def _image_slice(embedding: Embedding, i: int) -> Embedding:
    """Image ``i`` of a batch embedding (a tensor or a tuple of tensors), batch dim kept."""
    if isinstance(embedding, Tensor):
        return embedding[i:i + 1]
    return tuple(e[i:i + 1] for e in embedding)


@MODELS.register_module()
class SAMBoxPromptMaskHead(BaseModule):
    """Segment each detected box with frozen SAM, one batched decoder call per image.

    For the same weights, image and box this reproduces ``segment_anything.SamPredictor``
    (``predict(box=..., multimask_output=False)``): box coordinates are mapped to the resized
    input with the image's scale factor, the low-resolution logits are upsampled to the padded
    input, cropped to the valid region, upsampled to the original size and thresholded.

    Args:
        decoder: config of the frozen :class:`SAMPromptDecoder`.
        mask_threshold: logit threshold (SAM uses 0.0).
        score_mode: ``'box'`` keeps the detector's score; ``'box_x_iou'`` multiplies it by
            SAM's predicted IoU of the mask.
        chunk_size: boxes upsampled at a time to bound memory (100 full-size float masks of a
            1024 px input would take 400 MB).
        boxes_per_call: boxes per SAM decoder call: an int, or a dict by device type
            (default :data:`BOXES_PER_CALL`; a type it does not name decodes all at once).
        score_thr: detections scoring below are dropped BEFORE their masks are decoded
            (for a caller that would drop them anyway; COCO evaluation keeps all: -inf).
        max_per_img: at most this many best-scoring detections get masks and are kept
            (0 = all).
    """

    def __init__(self,
                 decoder: dict,
                 mask_threshold: float = 0.0,
                 score_mode: str = 'box',
                 chunk_size: int = 32,
                 boxes_per_call: Union[int, Dict[str, int], None] = None,
                 score_thr: float = float('-inf'),
                 max_per_img: int = 0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if score_mode not in ('box', 'box_x_iou'):
            raise ValueError(f"score_mode must be 'box' or 'box_x_iou', got {score_mode!r}")
        self.decoder = MODELS.build(decoder)
        self.mask_threshold = mask_threshold
        self.score_mode = score_mode
        self.chunk_size = chunk_size
        self.boxes_per_call = dict(BOXES_PER_CALL) if boxes_per_call is None else boxes_per_call
        self.score_thr = score_thr
        self.max_per_img = max_per_img

    def calls(self, num_boxes: int, device: torch.device) -> List[slice]:
        """Slices of ``num_boxes`` boxes, one per decoder call (see ``boxes_per_call``)."""
        n = self.boxes_per_call
        if isinstance(n, dict):
            n = n.get(device.type, num_boxes)
        n = max(1, int(n or num_boxes))
        return [slice(s, min(s + n, num_boxes)) for s in range(0, num_boxes, n)]

    def decode_boxes(self, image_embedding: Embedding, boxes: Tensor) -> Tuple[Tensor, Tensor]:
        """SAM masks of N boxes on ONE image in :meth:`calls` decoder calls.

        Args:
            image_embedding: the image's embedding, batch dim 1 (tensor or SAM 2 tuple).
            boxes: (N, 4) xyxy in model-input pixels.

        Returns:
            (low-res logits (N, 1, 4h, 4w), IoU predictions (N, 1)), as one call's.
        """
        parts = [self.decoder.predict_masks(image_embedding, boxes[s])
                 for s in self.calls(len(boxes), boxes.device)]
        if len(parts) == 1:
            return parts[0]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    @contextmanager
    def keeping(self, score_thr: float, max_per_img: int = 0) -> Iterator[None]:
        """Within the block, masks are decoded only for detections scoring at least
        ``score_thr`` (the ``max_per_img`` best; 0 = all), the others are dropped: for a
        caller that returns only those (an inference API with a score threshold)."""
        saved = self.score_thr, self.max_per_img
        self.score_thr, self.max_per_img = score_thr, max_per_img
        try:
            yield
        finally:
            self.score_thr, self.max_per_img = saved

    def keep_returned(self, res: InstanceData) -> InstanceData:
        """The detections a caller keeps (``score_thr``, ``max_per_img``), best first."""
        if self.score_thr == float('-inf') and not self.max_per_img:
            return res
        keep = (res.scores >= self.score_thr).nonzero()[:, 0]
        keep = keep[res.scores[keep].argsort(descending=True)]
        return res[keep[:self.max_per_img] if self.max_per_img else keep]

    def postprocess(self, low_res: Tensor, input_size: tuple, ori_size: tuple) -> Tensor:
        """(N, 1, 4h, 4w) logits -> (N, H0, W0) bool masks, as ``Sam.postprocess_masks``."""
        s = self.decoder.img_size
        out = []
        for chunk in low_res.split(self.chunk_size):
            m = F.interpolate(chunk, (s, s), mode='bilinear', align_corners=False)
            m = m[..., :input_size[0], :input_size[1]]
            m = F.interpolate(m, tuple(ori_size), mode='bilinear', align_corners=False)
            out.append(m[:, 0] > self.mask_threshold)
        if not out:
            return low_res.new_zeros((0, *ori_size), dtype=torch.bool)
        return torch.cat(out)

    @torch.no_grad()
    def predict(self, image_embeddings: Embedding, results_list: List[InstanceData],
                batch_img_metas: List[dict]) -> List[InstanceData]:
        """Add ``masks`` (N, H0, W0) bool to each image's results.

        Args:
            image_embeddings: (B, D, h, w) SAM embeddings of the targets, or SAM 2's tuple
                ``(image_embed, feat_s0, feat_s1)`` of batch-first tensors.
            results_list: per image, ``bboxes`` (N, 4) xyxy in ORIGINAL image pixels and
                ``scores`` (N,).
            batch_img_metas: per image, ``img_shape`` (Hi, Wi), ``ori_shape`` (H0, W0) and
                ``scale_factor`` (w_scale, h_scale) of the resize; ``resized_shape`` (Hi, Wi)
                where ``img_shape`` is the padded input (the authors' conventions of
                :class:`InContextDataPreprocessor`).
        """
        device = (image_embeddings if isinstance(image_embeddings, Tensor)
                  else image_embeddings[0]).device
        results_list = [self.keep_returned(r) for r in results_list]
        for i, (res, meta) in enumerate(zip(results_list, batch_img_metas)):
            ori = meta['ori_shape'][:2]
            if len(res) == 0:
                res.masks = torch.zeros((0, *ori), dtype=torch.bool, device=device)
                continue
            scale = res.bboxes.new_tensor(meta['scale_factor']).repeat(2)
            boxes = res.bboxes * scale  # to model-input pixels, as SamPredictor.apply_boxes
            low_res, iou = self.decode_boxes(_image_slice(image_embeddings, i), boxes)
            valid = meta.get('resized_shape', meta['img_shape'])[:2]  # the unpadded image
            res.masks = self.postprocess(low_res, valid, ori)
            if self.score_mode == 'box_x_iou':
                res.scores = res.scores * iou[:, 0].clamp(0, 1)
        return results_list
