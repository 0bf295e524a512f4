"""COCO run-length encoding of masks, in one place: what results files, reference files,
few-shot episodes and the annotation tool write and read (``pycocotools.mask``)."""
from typing import List, Sequence, Tuple

import numpy as np
import pycocotools.mask as mask_utils


def _encode(masks: np.ndarray) -> List[dict]:
    """(N, H, W) masks (N >= 1, non-zero = inside) -> N RLEs with ``bytes`` counts."""
    return mask_utils.encode(np.asfortranarray(np.asarray(masks).transpose(1, 2, 0)
                                               .astype(np.uint8)))


def masks_to_rle(masks: np.ndarray) -> List[dict]:
    """(N, H, W) bool -> N COCO RLEs ``{'size': [H, W], 'counts': str}`` (JSON-ready)."""
    if len(masks) == 0:
        return []
    rles = _encode(masks)
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


def uncompressed_rle(mask: np.ndarray) -> dict:
    """(H, W) mask -> COCO uncompressed RLE ``{'size': [H, W], 'counts': [int, ...]}``: run
    lengths in column-major order, starting with a (possibly empty) run of zeros; the form
    COCO's own files use for crowd regions."""
    mask = np.asarray(mask, bool)
    flat = mask.flatten(order='F')
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:  # the counts start with the zeros' run
        runs = [0] + runs
    return {'size': list(mask.shape), 'counts': runs}


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


def pack_masks(masks: np.ndarray) -> Tuple[bytes, np.ndarray]:
    """(N, H, W) masks -> their N compressed RLE ``counts`` joined in one ``bytes`` and the
    (N,) end offsets: a few objects per image instead of a dict per mask, to keep and to send
    between processes many masks compactly (:func:`unpack_rles` gives the RLEs back)."""
    return pack_rles(_encode(masks) if len(masks) else [])


def pack_rles(rles: Sequence[dict]) -> Tuple[bytes, np.ndarray]:
    """:func:`pack_masks` of masks already encoded (RLEs with ``bytes`` or ``str`` counts)."""
    counts = [r['counts'] if isinstance(r['counts'], bytes) else r['counts'].encode('ascii')
              for r in rles]
    return b''.join(counts), np.cumsum([len(c) for c in counts], dtype=np.int64)


def unpack_rles(blob: bytes, ends: np.ndarray, size: Sequence[int]) -> List[dict]:
    """The RLEs ``{'size': [H, W], 'counts': bytes}`` of :func:`pack_masks`'s output."""
    starts = np.concatenate([[0], ends[:-1]]).tolist()
    return [{'size': list(size), 'counts': blob[s:e]} for s, e in zip(starts, ends.tolist())]
