"""Image loading with clear errors for missing and corrupt files, for targets and references."""
import os.path as osp
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine.fileio import get

from mmdet.registry import TRANSFORMS


def load_image_checked(path: str, backend_args: Optional[dict] = None,
                       what: str = 'image') -> np.ndarray:
    """Read ``path`` as an (H, W, 3) uint8 BGR array or raise an error naming the file.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file exists but cannot be decoded (corrupt or not an image).
    """
    if '://' not in path and not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path!r}. Check data_prefix / data_root in '
                                'the config, or remove the image from the annotation file.')
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
                         'an image. Re-export it or remove it from the annotation file.')
    return img


@TRANSFORMS.register_module()
class LoadImageChecked(LoadImageFromFile):
    """``LoadImageFromFile`` that names the file when it is missing or corrupt.

    mmcv's loader fails deep inside the pipeline (``'NoneType' object has no attribute
    'shape'``) on a corrupt file; this one says which file and what to do.
    """

    def transform(self, results: dict) -> dict:
        img = load_image_checked(results['img_path'], self.backend_args)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
