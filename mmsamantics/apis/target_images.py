"""Target images as the model can take them: checked before decoding, large ones reduced.

The detector resizes every target so that its longest side is S (the test pipeline's
``Resize``, e.g. 1024 for SAM, 256 for the toy model), so detail beyond a few times S never
reaches it. Holding a 6000 x 4000 photograph at full size, and predicting its masks at full
size, costs gigabytes for nothing. Here, before anything is decoded:

- an image whose short side would round to 0 px at the model's input (a 3 x 4000 strip) is
  refused: the model cannot take it;
- an image that needs more than ``max_megapixels`` decoded pixels is refused (memory);
- an image whose long side exceeds ``REDUCE_ABOVE`` x S becomes a *working image* of long
  side >= ``WORK_SIDE`` x S: a JPEG is decoded directly at 1/2, 1/4 or 1/8 size (libjpeg's
  DCT scaling, ``cv2.IMREAD_REDUCED_COLOR_*``), never at full size; another format is
  decoded once and shrunk at once (area interpolation).

The model predicts on the working image; :func:`mmsamantics.apis.outputs.to_result` maps
boxes and masks back to original pixels, one mask at a time.

Shape shorthand: H0 x W0 original image, Hw x Ww working image.
"""
import logging
import math
import os.path as osp
from typing import Callable, List, Optional, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from .inputs import ImageLike, read_image

REDUCE_ABOVE = 4  # long side > 4 S: work on a reduced image
WORK_SIDE = 2     # ... whose long side is at least 2 S
DEFAULT_MAX_MEGAPIXELS = 250.0  # 750 MB as decoded BGR uint8
_JPEG = ('.jpg', '.jpeg', '.jpe', '.jfif')
_REDUCED = {2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8}


class UnsuitableImageError(ValueError):
    """An image the model cannot take (too thin, too large); the message says why."""


def header_hw(path: str) -> Optional[Tuple[int, int]]:
    """(H0, W0) from the file header (nothing decoded), EXIF rotation applied; None when
    the header cannot be read (the decoder then reports the file)."""
    from PIL import Image
    limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # a header decodes nothing:
    try:                                                         # the budget is ours to check
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(0x0112, 1) if hasattr(im, 'getexif') else 1
    except Exception:  # noqa: BLE001 - any unreadable header: left to the decoder
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return (w, h) if orientation in (5, 6, 7, 8) else (h, w)


def check_size(hw: Tuple[int, int], scale: int, max_megapixels: float,
               reduce: int = 1) -> None:
    """Raise :class:`UnsuitableImageError` for an image the model cannot take.

    Args:
        hw: (H0, W0). scale: S. max_megapixels: budget of decoded pixels.
        reduce: the decoding reduction (decoded pixels = H0 W0 / reduce^2).
    """
    h, w = hw
    short = round(min(h, w) * scale / max(h, w))  # as Resize(keep_ratio=True) rounds it
    if short < 1:
        size = f'{scale}x{short}' if w >= h else f'{short}x{scale}'
        raise UnsuitableImageError(
            f'too thin for the model: {w}x{h} px would be {size} px at its input size '
            f'{scale} (crop or pad it)')
    mp = h * w / reduce ** 2 / 1e6
    if mp > max_megapixels:
        raise UnsuitableImageError(
            f'too large for the memory budget: {w}x{h} px needs {mp:.0f} megapixels decoded '
            f'(> {max_megapixels:g}; raise --max-megapixels / max_megapixels, or downscale '
            'the file)')


def jpeg_reduction(hw: Tuple[int, int], scale: int) -> int:
    """Largest of 1, 2, 4, 8 that keeps the long side >= WORK_SIDE * S; 1 unless the long
    side exceeds REDUCE_ABOVE * S."""
    long = max(hw)
    if long <= REDUCE_ABOVE * scale:
        return 1
    return max(f for f in (1, 2, 4, 8) if math.ceil(long / f) >= WORK_SIDE * scale)


def _decode_reduced(path: str, hw: Tuple[int, int], f: int) -> Optional[np.ndarray]:
    """The JPEG at 1/f size, or None when the decoder's size is not the expected one."""
    img = cv2.imdecode(np.fromfile(path, np.uint8), _REDUCED[f])
    if img is None or img.shape[:2] != (math.ceil(hw[0] / f), math.ceil(hw[1] / f)):
        return None
    return img


def shrink(img: np.ndarray, scale: int) -> np.ndarray:
    """``img`` with its long side cut to WORK_SIDE * S (area interpolation) when it exceeds
    REDUCE_ABOVE * S; else ``img`` itself."""
    h, w = img.shape[:2]
    if max(h, w) <= REDUCE_ABOVE * scale:
        return img
    r = WORK_SIDE * scale / max(h, w)
    return cv2.resize(img, (max(1, round(w * r)), max(1, round(h * r))),
                      interpolation=cv2.INTER_AREA)


def read_target(image: ImageLike, scale: int,
                max_megapixels: float = DEFAULT_MAX_MEGAPIXELS
                ) -> Tuple[np.ndarray, Tuple[int, int]]:
    """The working image of a target and its original size.

    Args:
        image: a path, or an (H0, W0, 3) BGR uint8 array.
        scale: S, the model's input size (longest side after its resize).
        max_megapixels: refuse images that need more decoded pixels.

    Returns:
        (working image (Hw, Ww, 3) BGR uint8, (H0, W0)); the working image is the image
        itself unless its long side exceeds REDUCE_ABOVE * S.

    Raises:
        UnsuitableImageError: too thin or too large. FileNotFoundError / ValueError: a
        missing or undecodable file, a malformed array.
    """
    img = None
    if isinstance(image, str):
        hw = header_hw(image) if osp.isfile(image) else None
        if hw is not None:
            f = jpeg_reduction(hw, scale) if image.lower().endswith(_JPEG) else 1
            check_size(hw, scale, max_megapixels, f)
            if f > 1:
                img = _decode_reduced(image, hw, f)
    if img is None:
        img = read_image(image)
        hw = img.shape[:2]
        check_size(hw, scale, max_megapixels)
    return shrink(img, scale), (int(hw[0]), int(hw[1]))


def target_scale(cfg, default: int) -> int:
    """S of the test pipeline's ``Resize`` (its longest side), else ``default``."""
    pipeline = cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline') \
        or cfg.get('test_pipeline') or []
    for t in pipeline:
        name = t['type'] if isinstance(t['type'], str) else t['type'].__name__
        if name.split('.')[-1] == 'Resize' and t.get('keep_ratio', False) and 'scale' in t:
            sc = t['scale']
            return int(max(sc) if isinstance(sc, (list, tuple)) else sc)
    return int(default)


def load_targets(items: List[Tuple[int, ImageLike]], pipeline: Callable, scale: int,
                 max_megapixels: float) -> Tuple[list, list]:
    """Read and transform a batch of targets.

    Args:
        items: (input index, image) pairs. pipeline: the target transforms (resize, pack).
        scale: S. max_megapixels: see :func:`read_target`.

    Returns:
        (loaded, skipped): ``(index, path or None, working image, (H0, W0), packed data)``
        per readable image; ``(index, path or '<array i>', reason)`` per unreadable image or
        image the model cannot take (each also logged as a warning).
    """
    loaded, skipped = [], []
    for idx, image in items:
        path = image if isinstance(image, str) else None
        try:
            img, ori = read_target(image, scale, max_megapixels)
        except (FileNotFoundError, ValueError) as e:
            skipped.append((idx, path or f'<array {idx}>', str(e)))
            print_log(f'skipped {path or f"<array {idx}>"}: {e}', logger='current',
                      level=logging.WARNING)
            continue
        data = pipeline(dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2],
                             img_path=path, img_id=idx))
        loaded.append((idx, path, img, ori, data))
    return loaded, skipped
