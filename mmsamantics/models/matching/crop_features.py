"""Crop-and-encode region features: the InsDet way of describing a proposal.

Each region's box is cropped from the image, resized to a fixed side and encoded by the
feature extractor on its own; the region's feature is the average of the crop's tokens
weighted by how much of each token cell its mask covers. One extractor pass per crop
(batched), against one pass per image for the dense masked average
(:func:`weighted_token_average`).

Shape shorthand: N regions, M mask side, S image side, G crop side, g = G / 14 the crop's
token grid, C feature width.
"""
import torch
from torch import Tensor, nn
from torchvision.ops import roi_align

from .mask_ops import masks_to_boxes


def crop_region_features(extractor: nn.Module, images: Tensor, masks: Tensor,
                         crop_size: int, batch_size: int) -> Tensor:
    """Features of the regions of ONE image, each from its own box crop.

    Args:
        extractor: a ViT/14 encoder called as ``extractor(crops, (G, G))`` -> (n, C, g, g),
            with an ``embed_dim``.
        images: (1, 3, S, S) the preprocessed image.
        masks: (N, M, M) bool region masks on the S x S canvas at any resolution M.
        crop_size: G, a multiple of 14.
        batch_size: crops per extractor call.

    Returns:
        (N, C) masked averages of each crop's tokens.
    """
    if len(masks) == 0:
        return images.new_zeros(0, extractor.embed_dim)
    g = crop_size // 14
    boxes = masks_to_boxes(masks)  # (N, 4) in mask pixels
    idx = torch.arange(len(boxes), device=boxes.device, dtype=boxes.dtype)[:, None]
    # the mask inside its own box, on the crop's token grid: (N, g, g)
    weights = roi_align(masks[:, None].float(), torch.cat([idx, boxes], 1), g,
                        aligned=True)[:, 0]
    rois = torch.cat([torch.zeros_like(idx), boxes * (images.shape[-1] / masks.shape[-1])], 1)
    feats = []
    for chunk, w in zip(rois.split(batch_size), weights.split(batch_size)):
        crops = roi_align(images, chunk, crop_size, aligned=True)  # (n, 3, G, G)
        tok = extractor(crops, (crop_size, crop_size)).flatten(2)
        w = w.flatten(1).to(tok.dtype)
        feats.append(torch.einsum('ncp,np->nc', tok, w) / w.sum(1, keepdim=True).clamp(min=1e-6))
    return torch.cat(feats)
