"""Box-prompt study (Sama blog): SAM masks from tight GT boxes vs loosened boxes.

For every non-crowd GT instance of a COCO-format dataset, SAM is prompted with the tight
GT box and with the box loosened by a fraction of its side lengths (20 % in the blog,
clipped to the image, see :mod:`.box_loosening`); each mask is scored by its IoU with the
instance's GT mask. One image-encoder pass per image; the tight and loose boxes of all its
instances go through the decoder in ONE batched call.

Aggregation: a class's IoU is the mean over its instances; ``miou`` is the mean over
classes that have instances (the blog's per-category bars and its "mIOU"); the
instance-weighted mean is reported too. Blog (SAM ViT-H on COCO): 0.760 tight, 0.657 loose.
"""
import os.path as osp
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from pycocotools.coco import COCO

from ..datasets.transforms.loading import load_image_checked
from .box_loosening import loosen_boxes, xywh_to_xyxy

# (img (H, W, 3) BGR uint8, boxes (N, 4) xyxy) -> (masks (N, H, W) bool, scores (N,))
Segmenter = Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]
REGIMES = ('tight', 'loose')


def mask_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """IoU of pairs of binary masks.

    Args:
        pred: (N, H, W) or (H, W) bool masks.
        gt: masks of the same shape.

    Returns:
        (N,) float64 IoU (a scalar array for 2D inputs); two empty masks have IoU 1
        (perfect agreement), an empty union can only happen then.
    """
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape:
        raise ValueError(f'mask shapes differ: prediction {pred.shape} vs GT {gt.shape}')
    inter = np.logical_and(pred, gt).sum(axis=(-2, -1)).astype(np.float64)
    union = np.logical_or(pred, gt).sum(axis=(-2, -1)).astype(np.float64)
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def load_coco(ann_file: str) -> COCO:
    """A pycocotools COCO index, with clear errors for a missing or annotation-less file."""
    if not osp.isfile(ann_file):
        raise FileNotFoundError(f'annotation file not found: {ann_file!r}')
    coco = COCO(ann_file)
    if not coco.getCatIds():
        raise ValueError(f'{ann_file!r} has no categories')
    return coco


def study_instances(coco: COCO, img_id: int, min_area: float = 0.0) -> List[dict]:
    """Non-crowd annotations of an image with a non-empty box and ``area >= min_area``."""
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id], iscrowd=False))
    return [a for a in anns if a['bbox'][2] > 0 and a['bbox'][3] > 0
            and a.get('area', a['bbox'][2] * a['bbox'][3]) >= min_area]


def run_box_prompt_study(coco: COCO, img_dir: str, segmenter: Segmenter,
                         loosen: float = 0.2, loosen_mode: str = 'per_side',
                         min_area: float = 0.0, max_images: Optional[int] = None,
                         progress: Optional[Callable[[int, int], None]] = None) -> List[dict]:
    """Per-instance IoU of SAM masks from tight and loose boxes.

    Args:
        coco: the dataset (``load_coco``).
        img_dir: folder of the images (``file_name`` is relative to it).
        segmenter: e.g. a :class:`SAMBoxPrompter`; called once per image with the 2N boxes
            (N tight, then N loose).
        loosen / loosen_mode: see :func:`loosen_boxes`.
        min_area: skip instances with a smaller GT area (pixels).
        max_images: only the first images (sorted by id) that hold instances.
        progress: called with (images done, images total).

    Returns:
        One record per instance: ``image_id``, ``ann_id``, ``category_id``, ``area``,
        ``box_tight`` / ``box_loose`` (xyxy), ``iou_tight`` / ``iou_loose``,
        ``sam_score_tight`` / ``sam_score_loose`` (SAM's predicted IoU).
    """
    img_ids = [i for i in sorted(coco.getImgIds()) if study_instances(coco, i, min_area)]
    if not img_ids:
        raise ValueError('no instance to study: the annotation file has no non-crowd '
                         f'annotation with a box and area >= {min_area}')
    img_ids = img_ids[:max_images]
    records: List[dict] = []
    for done, img_id in enumerate(img_ids, 1):
        info = coco.imgs[img_id]
        img = load_image_checked(osp.join(img_dir, info['file_name']), what='image')
        h, w = img.shape[:2]
        if (h, w) != (info['height'], info['width']):
            raise ValueError(f'{info["file_name"]}: the image is {h}x{w} but the annotation '
                             f'file says {info["height"]}x{info["width"]}')
        anns = study_instances(coco, img_id, min_area)
        tight = xywh_to_xyxy([a['bbox'] for a in anns])
        loose = loosen_boxes(tight, loosen, (h, w), loosen_mode)
        masks, scores = segmenter(img, np.concatenate([tight, loose]))
        n = len(anns)
        if masks.shape != (2 * n, h, w):
            raise ValueError(f'the segmenter returned masks {masks.shape} for {2 * n} boxes '
                             f'on a {h}x{w} image')
        gt = np.stack([coco.annToMask(a).astype(bool) for a in anns])
        iou_t, iou_l = mask_iou(masks[:n], gt), mask_iou(masks[n:], gt)
        for k, a in enumerate(anns):
            records.append(dict(
                image_id=img_id, ann_id=a['id'], category_id=a['category_id'],
                area=float(gt[k].sum()), box_tight=tight[k].tolist(),
                box_loose=loose[k].tolist(), iou_tight=float(iou_t[k]),
                iou_loose=float(iou_l[k]), sam_score_tight=float(scores[k]),
                sam_score_loose=float(scores[n + k])))
        if progress is not None:
            progress(done, len(img_ids))
    return records


def summarize_study(records: Sequence[dict], coco: COCO) -> Dict:
    """Per-class and mean IoU of each regime.

    Returns:
        ``per_class``: rows {category_id, name, instances, iou_tight, iou_loose} for every
        category with instances (category-id order); ``miou_tight`` / ``miou_loose`` (mean
        over those classes); ``instance_iou_tight`` / ``instance_iou_loose`` (mean over
        instances); ``num_instances``, ``num_images``.
    """
    if not records:
        raise ValueError('no study records to summarize')
    rows = []
    for cid in sorted(coco.getCatIds()):
        rs = [r for r in records if r['category_id'] == cid]
        if rs:
            rows.append(dict(category_id=cid, name=coco.cats[cid]['name'], instances=len(rs),
                             **{f'iou_{g}': float(np.mean([r[f'iou_{g}'] for r in rs]))
                                for g in REGIMES}))
    out = dict(per_class=rows, num_instances=len(records),
               num_images=len({r['image_id'] for r in records}))
    for g in REGIMES:
        out[f'miou_{g}'] = float(np.mean([r[f'iou_{g}'] for r in rows]))
        out[f'instance_iou_{g}'] = float(np.mean([r[f'iou_{g}'] for r in records]))
    return out

