"""Load and resize the reference images of an in-context sample."""
from typing import Optional, Tuple

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from mmdet.registry import TRANSFORMS
from .loading import load_image_checked


@TRANSFORMS.register_module()
class LoadInContextReferences(BaseTransform):
    """Read ``results['references']`` images, resize them like the targets, scale their boxes.

    Required keys: ``references`` (list of dicts with ``img_path``, ``bbox`` xyxy in original
    pixels, ``label``, ``key``), as produced by :class:`InContextCocoDataset`.

    Added keys:
        ref_imgs (list[np.ndarray]): R resized (h_r, w_r, 3) BGR uint8 images.
        ref_bboxes (np.ndarray): (R, 4) float32 xyxy boxes in resized pixels.
        ref_labels (np.ndarray): (R,) int64 class labels.
        ref_keys (list[str]): R cache keys (annotation ids) of the references.

    Args:
        scale: (S, S); the longest side is resized to S as ``Resize(keep_ratio=True)`` does,
            so a reference is seen by SAM exactly as a target would be.
        load_images: False when the detector takes the references' tokens from a reference
            bank (``model.reference_bank``): only labels, keys and boxes (original pixels)
            are passed on, and no reference image is read.
    """

    def __init__(self, scale: Tuple[int, int], backend_args: Optional[dict] = None,
                 load_images: bool = True) -> None:
        self.scale = tuple(scale)
        self.backend_args = backend_args
        self.load_images = load_images

    def transform(self, results: dict) -> dict:
        refs = results.get('references', [])
        imgs, boxes, cache = [], [], {}
        for r in refs:
            x1, y1, x2, y2 = r['bbox']
            if not (x2 - x1 >= 1 and y2 - y1 >= 1):
                raise ValueError(f'reference {r.get("key")} of {r["img_path"]!r} has a '
                                 f'degenerate box {r["bbox"]}; give a box at least 1 px wide '
                                 'and high')
            if not self.load_images:
                boxes.append(np.asarray(r['bbox'], np.float32))
                continue
            if r['img_path'] not in cache:
                img = load_image_checked(r['img_path'], self.backend_args, 'reference image')
                h, w = img.shape[:2]
                img = mmcv.imrescale(img, self.scale, backend='cv2')
                # (w_scale, h_scale) computed as mmdet's Resize does, from the rounded size
                s = np.array([img.shape[1] / w, img.shape[0] / h] * 2, np.float32)
                cache[r['img_path']] = (img, s)
            img, s = cache[r['img_path']]
            imgs.append(img)
            boxes.append(np.asarray(r['bbox'], np.float32) * s)
        results['ref_imgs'] = imgs
        results['ref_bboxes'] = np.asarray(boxes, np.float32).reshape(-1, 4)
        results['ref_labels'] = np.asarray([r['label'] for r in refs], np.int64)
        results['ref_keys'] = [r['key'] for r in refs]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scale={self.scale}, '
                f'load_images={self.load_images})')
