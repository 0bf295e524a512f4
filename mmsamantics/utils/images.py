"""Image helpers shared by the pipelines, the caches, the detectors and the inference API.

One place for what every path must do identically so that a reference (or target) is seen
the same way whoever reads it: read an image with clear errors, resize its longest side as
mmdet's ``Resize(keep_ratio=True)`` does (with the xyxy scale factors of the rounded size),
decode a COCO segmentation, fill a box as a mask, and normalise/pad with a model's data
preprocessor.

Shape shorthand: H0 x W0 original image, h x w resized image, S x S padded model input.
"""
import os.path as osp
from collections import OrderedDict
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmengine.fileio import get
from torch import Tensor, nn

from .rle import decode_coco_mask

Scale = Union[int, Tuple[int, int]]


# what to do about a missing or undecodable image of a dataset (its annotation file lists it)
DATASET_HINTS = ('Check data_prefix / data_root in the config, or remove the image from the '
                 'annotation file.', 'Re-export it or remove it from the annotation file.')


def load_image_checked(path: str, backend_args: Optional[dict] = None,
                       what: str = 'image', hints: Tuple[str, str] = DATASET_HINTS
                       ) -> np.ndarray:
    """Read ``path`` as an (H0, W0, 3) uint8 BGR array or raise an error naming the file.

    Args:
        hints: what to do about a missing file, and about an undecodable one (appended to
            the messages; the default suits a dataset's annotation file).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file exists but cannot be decoded (corrupt or not an image).
    """
    if '://' not in path and not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path!r}. {hints[0]}'.strip())
    try:
        img = mmcv.imfrombytes(get(path, backend_args=backend_args), flag='color',
                               backend='cv2')
    except Exception as e:  # pragma: no cover - depends on the decoder's failure mode
        img = None
        err = f' ({e})'
    else:
        err = ''
    if img is None or img.size == 0:
        raise ValueError(f'{what} {path!r} cannot be decoded{err}: the file is corrupt or not '
                         f'an image. {hints[1]}'.strip())
    return img


def rescale(img: np.ndarray, scale: Scale) -> Tuple[np.ndarray, np.ndarray]:
    """Resize as ``Resize(scale, keep_ratio=True)``: the longest side to ``max(scale)``.

    Args:
        img: (H0, W0, C) image.
        scale: S, or (w, h) as mmdet writes it (a square (S, S) resizes the longest side
            to S).

    Returns:
        (resized (h, w, C) image, (4,) float32 xyxy scale factors (w / W0, h / H0) * 2,
        computed from the rounded size as mmdet's ``Resize`` does).
    """
    h0, w0 = img.shape[:2]
    size = (scale, scale) if isinstance(scale, int) else tuple(scale)
    out = mmcv.imrescale(img, size, backend='cv2')
    return out, np.array([out.shape[1] / w0, out.shape[0] / h0] * 2, np.float32)


def load_resized(path: str, scale: Scale, what: str = 'image'
                 ) -> Tuple[np.ndarray, np.ndarray, Tuple[int, int]]:
    """Read ``path`` and :func:`rescale` it.

    Returns:
        (img (h, w, 3) BGR uint8, xyxy scale (4,) float32, original (H0, W0)).
    """
    img = load_image_checked(path, what=what)
    out, s = rescale(img, scale)
    return out, s, tuple(img.shape[:2])


def resize_mask(mask: np.ndarray, hw: Tuple[int, int]) -> np.ndarray:
    """(H0, W0) mask -> (h, w) uint8 with nearest-neighbour interpolation."""
    return mmcv.imresize(np.ascontiguousarray(mask).astype(np.uint8), (hw[1], hw[0]),
                         interpolation='nearest')


def fill_box(mask: Union[np.ndarray, Tensor], box: Sequence[float]) -> Union[np.ndarray, Tensor]:
    """Set the pixels of xyxy ``box`` (rounded, at least 1 px wide and high) in ``mask``.

    Works in place on an (h, w) numpy array or tensor (a slice of a batch included) and
    returns it: the "box as its mask" of references given without a segmentation.
    """
    x1, y1, x2, y2 = (int(v) for v in np.round(np.array([float(v) for v in box])))
    mask[max(y1, 0):max(y2, y1 + 1), max(x1, 0):max(x2, x1 + 1)] = True
    return mask


def reference_mask(ref: dict, hw: Tuple[int, int], scale: np.ndarray) -> np.ndarray:
    """(h, w) bool mask of a reference on its resized image; its box where none is left.

    ``ref`` gives ``mask`` ((H0, W0) bool), or ``segmentation`` with ``img_hw``, or neither;
    ``bbox`` is xyxy in original pixels and ``scale`` the image's (4,) xyxy scale factors.
    """
    full = ref.get('mask')
    if full is None and ref.get('segmentation') and ref.get('img_hw'):
        full = decode_coco_mask(ref['segmentation'], *ref['img_hw'])
    m = (resize_mask(full, hw).astype(bool) if full is not None
         else np.zeros(hw, bool))
    if not m.any():  # a box or points reference, or a mask lost in the resize
        fill_box(m, np.asarray(ref['bbox'], np.float32) * scale)
    return m


def reference_image_batches(refs: Sequence[dict], scale: Scale, batch_size: int
                            ) -> Iterator[List[Tuple[np.ndarray, np.ndarray, List[int]]]]:
    """The distinct images of ``refs``, read and :func:`rescale` d, ``batch_size`` at a time.

    Args:
        refs: dicts with ``img`` ((H0, W0, 3) BGR uint8 array, grouped by identity) or
            ``img_path`` (grouped by path).
        scale: see :func:`rescale`.

    Yields:
        Lists of (resized (h, w, 3) image, (4,) xyxy scale, indices into ``refs`` of the
        references on that image).
    """
    groups: 'OrderedDict[tuple, List[int]]' = OrderedDict()
    for j, r in enumerate(refs):
        img = r.get('img')
        gid = ('array', id(img)) if img is not None else ('path', r['img_path'])
        groups.setdefault(gid, []).append(j)
    items = list(groups.values())
    for s in range(0, len(items), max(1, batch_size)):
        batch = []
        for idx in items[s:s + max(1, batch_size)]:
            img = refs[idx[0]].get('img')
            if img is None:
                img = load_image_checked(refs[idx[0]]['img_path'], what='reference image')
            out, sc = rescale(img, scale)
            batch.append((out, sc, idx))
        yield batch


def preprocess_images(preprocessor: nn.Module, imgs: Sequence[np.ndarray]) -> Tensor:
    """(h_i, w_i, 3) BGR uint8 images -> (B, 3, S, S) through a model's data preprocessor
    (normalised, channel order converted and padded exactly as in training/testing)."""
    inputs = [torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1))) for im in imgs]
    return preprocessor(dict(inputs=inputs, data_samples=None), False)['inputs']
