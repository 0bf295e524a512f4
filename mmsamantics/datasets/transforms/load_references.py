"""Load and resize the reference images of an in-context sample."""
from typing import Optional, Tuple

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log

from mmdet.registry import TRANSFORMS
from ...utils.images import (decode_coco_mask, fill_box, load_image_checked, rescale,
                             resize_mask)
from ..reference_validation import clip_to_image


def decode_reference_mask(ref: dict) -> Optional[np.ndarray]:
    """(H, W) uint8 mask of a reference from its COCO polygon / RLE, or None without one.

    Args:
        ref: a reference dict with ``segmentation`` (COCO polygon list, RLE dict, or None)
            and ``img_hw`` ((H, W) of the reference image in original pixels).
    """
    segm = ref.get('segmentation')
    if not segm:
        return None
    if 'img_hw' not in ref:
        raise KeyError(f'reference {ref.get("key")} has a segmentation but no img_hw '
                       '(the (height, width) of its image): the dataset must provide it')
    return decode_coco_mask(segm, *ref['img_hw'])


@TRANSFORMS.register_module()
class LoadInContextReferences(BaseTransform):
    """Read ``results['references']`` images, resize them like the targets, scale their boxes.

    Required keys: ``references`` (list of dicts with ``img_path``, ``bbox`` xyxy in original
    pixels, ``label``, ``key``, optionally ``flip``: mirror the reference horizontally), as
    produced by :class:`InContextCocoDataset`.

    Added keys:
        ref_imgs (list[np.ndarray]): R resized (h_r, w_r, 3) BGR uint8 images.
        ref_bboxes (np.ndarray): (R, 4) float32 xyxy boxes in resized pixels.
        ref_labels (np.ndarray): (R,) int64 class labels.
        ref_keys (list[str]): R cache keys (annotation ids) of the references.
        ref_masks (list[np.ndarray]): only with ``with_mask``: R (h_r, w_r) uint8 masks
            in resized pixels. A reference without a segmentation gets its filled box
            (logged once per reference), as the training-free matcher's prototypes allow.

    Args:
        scale: (S, S); the longest side is resized to S as ``Resize(keep_ratio=True)`` does,
            so a reference is seen by SAM exactly as a target would be.
        load_images: False when the detector takes the references' tokens from a reference
            bank (``model.reference_store.bank``): only labels, keys and boxes (original pixels)
            are passed on, and no reference image is read (with ``with_mask``, the masks are
            still decoded at the resized size, from ``img_hw``: SAMIC's heatmaps).
        with_mask: also decode each reference's instance mask (``ref_masks``), for models
            that pool features inside the reference mask (training-free matcher, SAMIC).
        blank_value: BGR colour of the constant image that replaces a reference marked
            ``blank`` (the ``'blank'`` reference control of :class:`InContextCocoDataset`);
            default SAM's pixel mean, which normalises to 0.
    """

    def __init__(self, scale: Tuple[int, int], backend_args: Optional[dict] = None,
                 load_images: bool = True, with_mask: bool = False,
                 blank_value: Tuple[int, int, int] = (104, 116, 124)) -> None:
        self.scale = tuple(scale)
        self.blank_value = tuple(blank_value)
        self.backend_args = backend_args
        self.load_images = load_images
        self.with_mask = with_mask
        self._warned_boxes: set = set()

    def transform(self, results: dict) -> dict:
        refs = results.get('references', [])
        imgs, boxes, masks, cache = [], [], [], {}
        for r in refs:
            # clipped to its image when its size is known; fully outside or degenerate: error
            box = clip_to_image(r['bbox'], r.get('img_hw'),
                                f'reference {r.get("key")} of {r["img_path"]!r}')
            if not self.load_images:
                if r.get('blank') or r.get('flip'):
                    raise ValueError('blank or flipped references are never in a reference '
                                     'bank: evaluate blank ones without --ref-bank, train '
                                     'flipped ones from images')
                boxes.append(box)
                if self.with_mask:
                    masks.append(self._mask_without_image(r, box))
                continue
            src = ('blank', *r['img_hw']) if r.get('blank') else r['img_path']
            if src not in cache:
                cache[src] = rescale(self._read(r), self.scale)
            img, s = cache[src]
            box = box * s
            mask = self._resized_mask(r, img.shape[:2], box) if self.with_mask else None
            if r.get('flip'):  # horizontal, as mmdet's RandomFlip (dataset's ref_flip_prob)
                img, mask = img[:, ::-1].copy(), None if mask is None else mask[:, ::-1].copy()
                box = np.array([img.shape[1] - box[2], box[1], img.shape[1] - box[0], box[3]],
                               np.float32)
            imgs.append(img)
            boxes.append(box)
            if self.with_mask:
                masks.append(mask)
        results['ref_imgs'] = imgs
        results['ref_bboxes'] = np.asarray(boxes, np.float32).reshape(-1, 4)
        results['ref_labels'] = np.asarray([r['label'] for r in refs], np.int64)
        results['ref_keys'] = [r['key'] for r in refs]
        if self.with_mask:
            results['ref_masks'] = masks
        return results

    def _read(self, ref: dict) -> np.ndarray:
        """The (H, W, 3) BGR image of a reference: its file, or a constant one if blank."""
        if not ref.get('blank'):
            return load_image_checked(ref['img_path'], self.backend_args, 'reference image')
        if 'img_hw' not in ref:
            raise KeyError(f'blank reference {ref.get("key")} needs img_hw (the size of the '
                           'image it replaces)')
        h, w = ref['img_hw']
        return np.full((int(h), int(w), 3), self.blank_value, np.uint8)

    def _mask_without_image(self, ref: dict, box: np.ndarray) -> np.ndarray:
        """The mask :meth:`_resized_mask` gives, sized from ``img_hw`` as :func:`rescale`
        would size the image, without reading it."""
        if 'img_hw' not in ref:
            raise ValueError(f'reference {ref.get("key")} has no img_hw: its mask cannot be '
                           'sized without its image (load the images, drop --ref-bank)')
        h0, w0 = (int(v) for v in ref['img_hw'])
        w, h = mmcv.rescale_size((w0, h0), self.scale)
        return self._resized_mask(ref, (h, w),
                                  box * np.array([w / w0, h / h0] * 2, np.float32))

    def _resized_mask(self, ref: dict, size: Tuple[int, int], box: np.ndarray) -> np.ndarray:
        """(h_r, w_r) uint8 mask of ``ref`` at the resized image ``size``; box if no mask."""
        mask = decode_reference_mask(ref)
        if mask is None:
            if ref.get('key') not in self._warned_boxes:
                self._warned_boxes.add(ref.get('key'))
                print_log(f'reference {ref.get("key")} of {ref["img_path"]!r} has no '
                          'segmentation: its box is used as its mask', logger='current',
                          level=30)
            return fill_box(np.zeros(size, np.uint8), box)
        return resize_mask(mask, size)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scale={self.scale}, '
                f'load_images={self.load_images}, with_mask={self.with_mask})')
