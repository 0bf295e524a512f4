"""The authors' k-shot reference selection, annotation for annotation (paper §5.2, Tables 2-3).

Re-implements the procedure of ``create_eval_jsons.py`` in the authors' code
(miquel-espinosa/samantics, ``reference_sam/``) so that, for the same annotation file and
seed, our reference-set file lists the same annotation ids in the same order as theirs:

1. ``random.Random(seed).shuffle`` of the annotation list in file order (Python's
   ``random`` module: the permutation depends only on the seed and the list length);
2. ONE pass over the shuffled list; an annotation is accepted when ALL of these hold:

   - its class holds fewer than ``max_shots`` accepted annotations;
   - its image was not accepted before, for ANY class (one reference per image overall);
   - ``iscrowd == 0``;
   - ``min_area < area < max_area_frac * H * W`` (the ``area`` field, strict bounds);
   - the IMAGE aspect ``W / H`` lies in ``[1 / max_aspect, max_aspect]`` (inclusive);
   - its box ``[x, y, x + w, y + h]`` keeps ``border`` px from every image edge
     (``x >= border``, ``y >= border``, ``x + w <= W - border``, ``y + h <= H - border``);
   - its mask (pycocotools ``annToMask``) covers less than ``max_frame_pct`` % of the pixels
     of the image's ``frame``-px border frame (rows ``[:frame]``, ``[-frame:]``, columns
     ``[:frame]``, ``[-frame:]``, their union);
   - its box IoU (xyxy, torchvision ``box_iou`` in float32) with every other annotation of
     its image, crowd regions included, is ``<= max_iou``;
   - its id is not one of :data:`EXCLUDED_IDS` (COCO annotations that draw several objects);

3. stop as soon as every category of the file holds ``max_shots``; sort each class by
   ``area``, largest first (stable: equal areas keep their acceptance order); k-shot is the
   first k (``shot < k``).

Every category of the file competes for images, so ``classes`` only filters the written file:
the COCO-NOVEL references of a novel class are the same as in the 80-class file. Use the
per-class selection of :func:`~mmsamantics.datasets.reference_sets.select_reference_set`
instead when a class's references must not depend on the other classes at all.
"""
import random
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torchvision.ops import box_iou

from ..utils.images import decode_coco_mask
from .reference_sets import (CocoLike, _category_ids, _check_filters, _load_coco,
                             check_selection_args, reference_set_file)

# Annotations that outline several objects at once; the authors never use them as references.
EXCLUDED_IDS = (50138, 1549254, 1049944, 1549217, 1048117)
# The authors' thresholds (create_eval_jsons.py defaults; min_area 32**2, max_area 50 %).
AUTHORS_THRESHOLDS = dict(min_area=32 * 32, max_area_frac=0.5, max_aspect=5.0, border=10,
                          frame=15, max_frame_pct=5.0, max_iou=0.35)
PROCEDURE = ('authors (create_eval_jsons.py): random.Random(seed).shuffle of the annotations '
             'in file order; one pass accepting an annotation when its class holds fewer than '
             'max_shots, its image is unused by any class, it is not crowd, min_area < area < '
             'max_area_frac*H*W, image aspect W/H in [1/max_aspect, max_aspect], box at least '
             'border px inside the image, mask < max_frame_pct % of the frame-px border frame, '
             'box IoU <= max_iou with every other annotation of the image, id not excluded; '
             'stop when every class is full; each class sorted by area descending (stable), '
             'numbered shot 0..n-1')


def _xyxy(bbox: Sequence[float]) -> List[float]:
    x, y, w, h = bbox
    return [x, y, x + w, y + h]


def _isolated(ann: dict, same_image: List[dict], max_iou: float) -> bool:
    """Box IoU of ``ann`` with every other annotation of its image is <= ``max_iou``.

    The tensors are built from the JSON numbers as the authors build them (``torch.tensor``
    of python lists: float32, or int64 when a list holds integers only), so IoUs at the
    threshold round the same way.
    """
    others = [o['bbox'] for o in same_image if o['id'] != ann['id']]
    if not others:
        return True
    iou = box_iou(torch.tensor([_xyxy(ann['bbox'])]), torch.tensor([_xyxy(b) for b in others]))
    return not bool(iou.max() > max_iou)


def _frame_overlap_pct(ann: dict, h: int, w: int, frame: int) -> float:
    """Percentage of the ``frame``-px border frame of an (h, w) image covered by the mask."""
    ring = np.zeros((h, w), dtype=np.uint8)
    if frame > 0:
        ring[:frame, :] = 1
        ring[-frame:, :] = 1
        ring[:, :frame] = 1
        ring[:, -frame:] = 1
    # decode_coco_mask is pycocotools' annToMask (polygons merged, RLE either way)
    inter = np.logical_and(decode_coco_mask(ann['segmentation'], h, w), ring)
    return float(inter.sum() / np.sum(ring) * 100) if ring.any() else 0.0


def _accepts(ann: dict, img: dict, same_image: List[dict], t: dict,
             excluded: frozenset) -> bool:
    """All per-annotation rules of the module docstring (cheap ones first)."""
    h, w = img['height'], img['width']
    x1, y1, x2, y2 = _xyxy(ann['bbox'])
    return (ann.get('iscrowd', 0) == 0
            and ann['area'] > t['min_area']
            and ann['area'] < t['max_area_frac'] * h * w
            and 1 / t['max_aspect'] <= w / h <= t['max_aspect']
            and x1 >= t['border'] and y1 >= t['border']
            and x2 <= w - t['border'] and y2 <= h - t['border']
            and ann['id'] not in excluded
            and _isolated(ann, same_image, t['max_iou'])
            and _frame_overlap_pct(ann, h, w, int(t['frame'])) < t['max_frame_pct'])


def _check_thresholds(t: dict) -> None:
    _check_filters(t['min_area'], t['max_area_frac'], t['max_aspect'], t['border'],
                   t['max_iou'])
    if t['frame'] < 0 or int(t['frame']) != t['frame']:
        raise ValueError(f'frame={t["frame"]} must be a whole number of pixels >= 0')
    if not 0 < t['max_frame_pct'] <= 100:
        raise ValueError(f'max_frame_pct={t["max_frame_pct"]} must be in (0, 100] (percent)')


def select_authors_reference_set(coco: CocoLike, seed: int, max_shots: int = 10, *,
                                 classes: Optional[Sequence[str]] = None,
                                 excluded_ids: Sequence[int] = EXCLUDED_IDS,
                                 **thresholds) -> dict:
    """Choose up to ``max_shots`` references per class the authors' way (module docstring).

    Args:
        coco: COCO instances dict, pycocotools ``COCO`` or path (the TRAIN annotations,
            with ``area``, ``bbox``, ``segmentation`` and ``iscrowd`` per annotation).
        seed: non-negative integer (authors: 42, 123, 33).
        max_shots: ``n_ref``, references kept per class (authors: 10); k-shot = ``shot < k``.
        classes: class names written to the file (default all); all classes still compete.
        excluded_ids: annotation ids never accepted (default: the authors' five).
        **thresholds: overrides of :data:`AUTHORS_THRESHOLDS` (``min_area``,
            ``max_area_frac``, ``max_aspect``, ``border``, ``frame``, ``max_frame_pct``,
            ``max_iou``).

    Returns:
        A reference-set dict (format: :mod:`mmsamantics.datasets.reference_sets`) whose
        ``info`` records ``selection='authors'``, the seed, every threshold, the excluded ids
        and ``annotations_scanned`` (how far the pass went).
    """
    check_selection_args(seed, max_shots)
    unknown = sorted(set(thresholds) - set(AUTHORS_THRESHOLDS))
    if unknown:
        raise TypeError(f'unknown thresholds {unknown}; known: {sorted(AUTHORS_THRESHOLDS)}')
    t = dict(AUTHORS_THRESHOLDS, **thresholds)
    _check_thresholds(t)
    coco, path = _load_coco(coco)
    keep_ids = set(_category_ids(coco, classes))
    images = {im['id']: im for im in coco['images']}
    anns = coco['annotations']
    by_image: Dict[int, List[dict]] = {}
    for a in anns:
        by_image.setdefault(a['image_id'], []).append(a)
    accepted: Dict[int, List[dict]] = {c['id']: [] for c in coco['categories']}
    bad = [a['id'] for a in anns if a['category_id'] not in accepted or a['image_id'] not in images]
    if bad:
        raise ValueError(f'{path or "input"}: annotations {bad[:5]} name a category or image '
                         'missing from "categories" / "images"; the file is inconsistent.')
    excluded = frozenset(int(i) for i in excluded_ids)
    order = list(range(len(anns)))
    random.Random(int(seed)).shuffle(order)
    used_images, full, scanned = set(), 0, 0
    for scanned, i in enumerate(order, 1):
        a = anns[i]
        kept = accepted[a['category_id']]
        if (len(kept) < max_shots and a['image_id'] not in used_images
                and _accepts(a, images[a['image_id']], by_image[a['image_id']], t, excluded)):
            kept.append(a)
            used_images.add(a['image_id'])
            full += len(kept) == max_shots
        if full == len(accepted):
            break
    # sorted(reverse=True) keeps equal areas in acceptance order, as the authors' sort does
    per_class = {c: sorted(v, key=lambda a: a['area'], reverse=True)
                 for c, v in accepted.items() if c in keep_ids}
    info = dict(selection='authors', procedure=PROCEDURE,
                filters=dict(t, classes=list(classes) if classes is not None else None),
                excluded_ids=sorted(excluded), annotations_scanned=scanned)
    return reference_set_file(coco, path, per_class, seed, max_shots, info)
