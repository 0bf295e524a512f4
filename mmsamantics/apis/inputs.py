"""What users pass as images: a path, an array, a list, a folder or a glob."""
import glob
import logging
import os
import os.path as osp
from typing import List, Optional, Tuple, Union

import numpy as np
from mmengine.logging import print_log

from ..utils.images import load_image_checked

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
ImageLike = Union[str, np.ndarray]


# files that are images but that the decoder does not read (animated, or no codec in cv2)
UNREAD_EXTENSIONS = {'.gif': 'GIF is not read: convert it to PNG',
                     '.heic': 'HEIC is not read: convert it to JPEG or PNG',
                     '.heif': 'HEIF is not read: convert it to JPEG or PNG',
                     '.svg': 'SVG is not read: rasterise it to PNG'}
Ignored = List[Tuple[str, str]]


def _is_glob(s: str) -> bool:
    return any(c in s for c in '*?[')


def _unread_reason(path: str) -> Optional[str]:
    """Why a folder entry that looks like an image is not read (None: it is read)."""
    if osp.islink(path) and not osp.exists(path):
        return 'a symbolic link that does not resolve (dangling, or a loop)'
    return UNREAD_EXTENSIONS.get(osp.splitext(path)[1].lower())


def _folder_images(folder: str, ignored: Ignored) -> List[str]:
    files, unread = [], []
    for f in sorted(os.listdir(folder)):
        path = osp.join(folder, f)
        reason = _unread_reason(path)
        if reason is not None:
            unread.append((path, reason))
        elif f.lower().endswith(IMG_EXTENSIONS) and osp.isfile(path):
            files.append(path)
    ignored += unread
    if not files:
        also = f'; not read: {unread[:3]}' if unread else ''
        raise ValueError(f'no images in folder {folder!r} (extensions '
                         f'{", ".join(IMG_EXTENSIONS)}){also}')
    return files


def _glob_files(pattern: str, ignored: Ignored) -> List[str]:
    """Files matching ``pattern``, sorted, each real file once: ``**`` follows symbolic
    links, so a link loop would list the same files again at every depth."""
    files, seen = [], {}
    for f in sorted(glob.glob(pattern, recursive=True)):
        reason = _unread_reason(f)
        if reason is not None:
            ignored.append((f, reason))
            continue
        if not osp.isfile(f):
            continue
        real = osp.realpath(f)
        if real in seen:
            ignored.append((f, f'the same file as {seen[real]!r} (through a symbolic link)'))
            continue
        seen[real] = f
        files.append(f)
    if not files:
        raise ValueError(f'no file matches {pattern!r}')
    return files


def expand_inputs(inputs, ignored: Optional[Ignored] = None) -> List[ImageLike]:
    """Flatten ``inputs`` into a list of image paths and arrays.

    - a folder: its image files (by extension, not recursive), sorted by name;
    - a glob (``*``, ``?``, ``[``; ``**`` recursive, each real file once): the matching
      files, sorted;
    - a path or an (H, W, 3) array: itself;
    - a list/tuple of any of these: concatenated in order.

    Args:
        inputs: see above.
        ignored: when a list, receives ``(path, reason)`` for every entry that is not read:
            ``.gif`` (and other formats the decoder does not read), dangling or looping
            symbolic links, files reached twice through links. They are logged either way.

    Raises:
        ValueError: an empty folder, a glob matching nothing, or nothing at all.
        FileNotFoundError: a path that is neither a file, a folder nor a glob.
    """
    if isinstance(inputs, (str, np.ndarray)) or hasattr(inputs, '__fspath__'):
        inputs = [inputs]
    out: List[ImageLike] = []
    skipped: Ignored = []
    for x in inputs:
        if isinstance(x, np.ndarray):
            out.append(x)
            continue
        x = str(x)
        if osp.isdir(x):
            out += _folder_images(x, skipped)
        elif osp.isfile(x):
            out.append(x)
        elif _is_glob(x):
            out += _glob_files(x, skipped)
        else:
            # in a list a missing file is skipped at load time (and reported); alone it is
            # almost certainly a typo
            if len(inputs) == 1:
                raise FileNotFoundError(f'{x!r} is neither an image file, a folder nor a glob')
            out.append(x)
    if not out:
        raise ValueError('no input images')
    for path, reason in skipped:
        print_log(f'not read: {path}: {reason}', logger='current', level=logging.WARNING)
    if ignored is not None:
        ignored += skipped
    return out


def read_image(image: ImageLike, what: str = 'image') -> np.ndarray:
    """An (H, W, 3) BGR uint8 array from a path or an array.

    Arrays must be BGR (the ``cv2.imread`` / ``mmcv.imread`` convention, as mmdet's
    ``DetInferencer``): pass ``rgb[..., ::-1]`` for RGB arrays (PIL, matplotlib). (H, W)
    grey arrays are replicated to 3 channels; an alpha channel is dropped.

    Raises:
        FileNotFoundError / ValueError: a missing or undecodable file, a malformed array.
    """
    if isinstance(image, np.ndarray):
        img = image
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        if img.ndim != 3 or img.shape[2] not in (3, 4) or min(img.shape[:2]) < 1:
            raise ValueError(f'{what}: an array image must be (H, W, 3) BGR, got shape '
                             f'{image.shape}')
        if img.dtype != np.uint8:
            raise ValueError(f'{what}: an array image must be uint8 (0-255), got {img.dtype}')
        return np.ascontiguousarray(img[:, :, :3])
    path = str(image)
    if '://' not in path and not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path!r}')
    return load_image_checked(path, what=what, hints=('', 'Re-export it, or leave it out.'))
