"""WSSS pseudo-labels: box prompts -> SAM instance masks -> semantic label PNGs, and their
mIoU against GT label PNGs (Sun et al.'s SAM-for-WSSS report: VOC 88.3, COCO 66.8 mIoU).

Shape shorthand: N boxes of one image, (H, W) its size, K dataset classes.

A pseudo-label directory holds one palette PNG per image (the image's file name with a
.png extension, values: 0 background, 1..K classes, 255 ignore; see :mod:`.label_maps`)
and a ``classes.json`` naming the values.
"""
import os
import os.path as osp
from typing import Callable, Dict, List, Optional

import numpy as np
from pycocotools.coco import COCO

from ..datasets.transforms.loading import load_image_checked
from .box_sources import BoxesLabelsScores
from .label_maps import (coco_classes, compose_label_map, gt_label_map, label_png_name,
                         load_label_png, read_classes, save_label_png, write_classes)
from .semantic_metrics import SemanticIoU

BoxSource = Callable[[int, str, np.ndarray], BoxesLabelsScores]


def _image_ids(coco: COCO, max_images: Optional[int]) -> List[int]:
    ids = sorted(coco.getImgIds())
    if not ids:
        raise ValueError('the annotation file lists no images')
    return ids[:max_images]


def generate_pseudo_labels(coco: COCO, img_dir: str, box_source: BoxSource, segmenter,
                           out_dir: str, rule: str = 'score', ignore_conflicts: bool = False,
                           max_images: Optional[int] = None,
                           progress: Optional[Callable[[int, int], None]] = None) -> Dict:
    """Write a pseudo-label PNG for every image of ``coco``.

    Args:
        coco: the dataset (images and the class list; annotations only for GT boxes).
        img_dir: folder of the images.
        box_source: ``(img_id, img_path, img) -> (boxes, labels, scores)``
            (:class:`GTBoxSource` / :class:`DetectorBoxSource`).
        segmenter: ``(img, boxes (N, 4)) -> (masks (N, H, W), sam_iou (N,))``, e.g. a
            :class:`SAMBoxPrompter`: one encoder pass, all N boxes in one decoder call.
        out_dir: where the PNGs and ``classes.json`` go.
        rule / ignore_conflicts: overlap resolution, see :func:`compose_label_map`
            (``'score'`` uses the box score).
        max_images: only the first images (sorted by id).
        progress: called with (images done, images total).

    Returns:
        ``images``, ``boxes`` (prompts in total), ``empty_images`` (no box: all
        background), ``class_names``.
    """
    cat_to_label, names = coco_classes(coco)
    os.makedirs(out_dir, exist_ok=True)
    write_classes(osp.join(out_dir, 'classes.json'), names)
    ids = _image_ids(coco, max_images)
    stats = dict(images=0, boxes=0, empty_images=0, class_names=names)
    for done, img_id in enumerate(ids, 1):
        info = coco.imgs[img_id]
        path = osp.join(img_dir, info['file_name'])
        img = load_image_checked(path, what='image')
        boxes, labels, scores = box_source(img_id, path, img)
        if len(boxes):
            masks, _ = segmenter(img, boxes)
        else:  # no prompt: the decoder is not called, the image is all background
            masks = np.zeros((0, *img.shape[:2]), bool)
            stats['empty_images'] += 1
        lm = compose_label_map(masks, labels, img.shape[:2], scores, rule, ignore_conflicts)
        save_label_png(lm, osp.join(out_dir, label_png_name(info['file_name'])))
        stats['images'] += 1
        stats['boxes'] += int(len(boxes))
        if progress is not None:
            progress(done, len(ids))
    return stats


def write_gt_labels(coco: COCO, out_dir: str, rule: str = 'area',
                    max_images: Optional[int] = None) -> Dict:
    """Render VOC-style SegmentationClass PNGs of every image from its instance masks.

    Returns ``images`` and ``class_names``.
    """
    cat_to_label, names = coco_classes(coco)
    os.makedirs(out_dir, exist_ok=True)
    write_classes(osp.join(out_dir, 'classes.json'), names)
    ids = _image_ids(coco, max_images)
    for img_id in ids:
        save_label_png(gt_label_map(coco, img_id, cat_to_label, rule),
                       osp.join(out_dir, label_png_name(coco.imgs[img_id]['file_name'])))
    return dict(images=len(ids), class_names=names)


def evaluate_label_dirs(pred_dir: str, gt_dir: str, class_names: Optional[List[str]] = None,
                        ignore_index: int = 255, allow_missing: bool = False) -> Dict:
    """mIoU of the pseudo-label PNGs of ``pred_dir`` against the GT PNGs of ``gt_dir``.

    Every GT PNG needs a prediction of the same name and size (else an error; with
    ``allow_missing`` a missing prediction counts as all background, as an image the
    pipeline found nothing in). Class names default to ``gt_dir/classes.json``, then
    ``pred_dir/classes.json``.

    Returns:
        :meth:`SemanticIoU.summary` plus ``missing`` (predictions counted as background).
    """
    for d, what in ((pred_dir, 'pseudo-label'), (gt_dir, 'GT label')):
        if not osp.isdir(d):
            raise FileNotFoundError(f'{what} folder not found: {d!r}')
    if class_names is None:
        found = [osp.join(d, 'classes.json') for d in (gt_dir, pred_dir)
                 if osp.isfile(osp.join(d, 'classes.json'))]
        if not found:
            raise FileNotFoundError(f'no classes.json in {gt_dir!r} or {pred_dir!r}: pass the '
                                    'class names (--classes)')
        class_names = read_classes(found[0])
    pred_cls = osp.join(pred_dir, 'classes.json')
    if osp.isfile(pred_cls) and read_classes(pred_cls) != list(class_names):
        raise ValueError(f'{pred_cls} lists other classes than the GT: the label values '
                         'would not mean the same classes')
    gts = sorted(f for f in os.listdir(gt_dir) if f.endswith('.png'))
    if not gts:
        raise ValueError(f'no .png label maps in {gt_dir!r}')
    metric, missing = SemanticIoU(class_names, ignore_index), []
    for name in gts:
        gt = load_label_png(osp.join(gt_dir, name))
        p = osp.join(pred_dir, name)
        if not osp.isfile(p):
            if not allow_missing:
                raise FileNotFoundError(f'no pseudo-label for {name} in {pred_dir!r} '
                                        '(pass --allow-missing to count it as background)')
            missing.append(name)
            pred = np.zeros_like(gt)
        else:
            pred = load_label_png(p)
        try:
            metric.add(pred, gt)
        except ValueError as e:
            raise ValueError(f'{name}: {e}') from e
    return dict(metric.summary(), missing=missing)
