"""Masks from predicted boxes: SAM box prompts on the (cached) target embedding.

Shape shorthand: N boxes of one image, D prompt width, h = w = S / 16, (H0, W0) the
original image size, (Hi, Wi) the resized input size before padding.
"""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.registry import MODELS

# SAM: a (B, D, h, w) tensor; SAM 2: (image_embed, feat_s0, feat_s1), each batch-first
Embedding = Union[Tensor, Sequence[Tensor]]


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
    """

    def __init__(self,
                 decoder: dict,
                 mask_threshold: float = 0.0,
                 score_mode: str = 'box',
                 chunk_size: int = 32,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if score_mode not in ('box', 'box_x_iou'):
            raise ValueError(f"score_mode must be 'box' or 'box_x_iou', got {score_mode!r}")
        self.decoder = MODELS.build(decoder)
        self.mask_threshold = mask_threshold
        self.score_mode = score_mode
        self.chunk_size = chunk_size

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
                ``scale_factor`` (w_scale, h_scale) of the resize.
        """
        device = (image_embeddings if isinstance(image_embeddings, Tensor)
                  else image_embeddings[0]).device
        for i, (res, meta) in enumerate(zip(results_list, batch_img_metas)):
            ori = meta['ori_shape'][:2]
            if len(res) == 0:
                res.masks = torch.zeros((0, *ori), dtype=torch.bool, device=device)
                continue
            scale = res.bboxes.new_tensor(meta['scale_factor']).repeat(2)
            boxes = res.bboxes * scale  # to model-input pixels, as SamPredictor.apply_boxes
            low_res, iou = self.decoder.predict_masks(_image_slice(image_embeddings, i),
                                                      boxes)
            res.masks = self.postprocess(low_res, meta['img_shape'][:2], ori)
            if self.score_mode == 'box_x_iou':
                res.scores = res.scores * iou[:, 0].clamp(0, 1)
        return results_list
