"""Image loading with clear errors for missing and corrupt files, for targets and references."""
import numpy as np
from mmcv.transforms import LoadImageFromFile

from mmdet.registry import TRANSFORMS
from ...utils.images import load_image_checked

__all__ = ['LoadImageChecked', 'load_image_checked']


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
