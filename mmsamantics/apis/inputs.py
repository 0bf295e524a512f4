"""What users pass as images: a path, an array, a list, a folder or a glob."""
import glob
import os
import os.path as osp
from typing import List, Union

import numpy as np

from ..datasets.transforms.loading import load_image_checked

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
ImageLike = Union[str, np.ndarray]


def _is_glob(s: str) -> bool:
    return any(c in s for c in '*?[')


def _folder_images(folder: str) -> List[str]:
    files = sorted(osp.join(folder, f) for f in os.listdir(folder)
                   if f.lower().endswith(IMG_EXTENSIONS) and osp.isfile(osp.join(folder, f)))
    if not files:
        raise ValueError(f'no images in folder {folder!r} (extensions {", ".join(IMG_EXTENSIONS)})')
    return files


def expand_inputs(inputs) -> List[ImageLike]:
    """Flatten ``inputs`` into a list of image paths and arrays.

    - a folder: its image files (by extension, not recursive), sorted by name;
    - a glob (``*``, ``?``, ``[``; ``**`` recursive): the matching files, sorted;
    - a path or an (H, W, 3) array: itself;
    - a list/tuple of any of these: concatenated in order.

    Raises:
        ValueError: an empty folder, a glob matching nothing, or nothing at all.
        FileNotFoundError: a path that is neither a file, a folder nor a glob.
    """
    if isinstance(inputs, (str, np.ndarray)) or hasattr(inputs, '__fspath__'):
        inputs = [inputs]
    out: List[ImageLike] = []
    for x in inputs:
        if isinstance(x, np.ndarray):
            out.append(x)
            continue
        x = str(x)
        if osp.isdir(x):
            out += _folder_images(x)
        elif osp.isfile(x):
            out.append(x)
        elif _is_glob(x):
            files = sorted(f for f in glob.glob(x, recursive=True) if osp.isfile(f))
            if not files:
                raise ValueError(f'no file matches {x!r}')
            out += files
        else:
            # in a list a missing file is skipped at load time (and reported); alone it is
            # almost certainly a typo
            if len(inputs) == 1:
                raise FileNotFoundError(f'{x!r} is neither an image file, a folder nor a glob')
            out.append(x)
    if not out:
        raise ValueError('no input images')
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
    return load_image_checked(str(image), what=what)
