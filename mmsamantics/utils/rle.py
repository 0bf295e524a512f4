"""COCO run-length encoding of masks, in one place: what results files, reference files,
few-shot episodes and the annotation tool write and read (``pycocotools.mask``)."""
from typing import List

import numpy as np
import pycocotools.mask as mask_utils


def masks_to_rle(masks: np.ndarray) -> List[dict]:
    """(N, H, W) bool -> N COCO RLEs ``{'size': [H, W], 'counts': str}`` (JSON-ready)."""
    if len(masks) == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray(np.asarray(masks).transpose(1, 2, 0)
                                               .astype(np.uint8)))
    for r in rles:
        r['counts'] = r['counts'].decode('ascii')
    return list(rles)


def encode_mask(mask: np.ndarray) -> dict:
    """(H, W) mask (non-zero = inside) -> COCO compressed RLE with a ``str`` ``counts``."""
    return masks_to_rle(np.asarray(mask, bool)[None])[0]


def decode_mask(rle: dict) -> np.ndarray:
    """COCO compressed RLE (``counts`` str or bytes) -> (H, W) bool mask."""
    counts = rle['counts']
    return mask_utils.decode(dict(rle, counts=counts.encode('ascii') if isinstance(counts, str)
                                  else counts)).astype(bool)


def decode_coco_mask(segmentation, h: int, w: int) -> np.ndarray:
    """(H0, W0) uint8 mask of a COCO ``segmentation``: polygons, RLE or uncompressed RLE
    (pycocotools' ``annToMask``)."""
    if isinstance(segmentation, list):  # polygons (possibly several parts)
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, h, w))
    elif isinstance(segmentation.get('counts'), list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(segmentation, h, w)
    else:
        rle = segmentation
    return mask_utils.decode(rle).astype(np.uint8)
