"""Semantic label maps: instances -> one (H, W) map, VOC palette PNGs, GT maps from COCO.

Shape shorthand: N instances, (H, W) the image size, K dataset classes.

Label values: 0 is background, class ``k`` (1..K) is the k-th category of the COCO JSON in
increasing category-id order (VOC's SegmentationClass convention), and 255 means "ignore"
(VOC's object borders; here: crowd regions, and optionally pixels claimed by instances of
different classes).
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from pycocotools.coco import COCO

IGNORE_INDEX = 255
OVERLAP_RULES = ('score', 'area')


def voc_palette(n: int = 256) -> np.ndarray:
    """(n, 3) uint8 PASCAL VOC colour map: bit j of the label goes to bit 7 - j // 3 of
    channel j % 3, so neighbouring labels get clearly different colours (0 = black)."""
    pal = np.zeros((n, 3), np.uint8)
    for label in range(n):
        c, shift = label, 7
        while c:
            for ch in range(3):
                pal[label, ch] |= ((c >> ch) & 1) << shift
            c >>= 3
            shift -= 1
    return pal


def save_label_png(label_map: np.ndarray, path: str) -> None:
    """Write an (H, W) uint8 label map as a palette ('P' mode) PNG, VOC style."""
    lm = np.asarray(label_map)
    if lm.ndim != 2 or lm.dtype != np.uint8:
        raise ValueError(f'a label map must be (H, W) uint8, got {lm.shape} {lm.dtype}')
    img = Image.fromarray(lm, mode='P')
    img.putpalette(voc_palette().reshape(-1).tolist())
    img.save(path)


def load_label_png(path: str) -> np.ndarray:
    """(H, W) uint8 label values of a palette or grey PNG (not its colours)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'label PNG not found: {path!r}')
    img = Image.open(path)
    if img.mode not in ('P', 'L'):
        raise ValueError(f'{path!r} is a {img.mode!r} image: label maps must be palette (P) '
                         'or grey (L) PNGs whose pixel values are class indices, not colours')
    return np.array(img, np.uint8)


def compose_label_map(masks: np.ndarray, labels: Sequence[int], img_shape: Tuple[int, int],
                      scores: Optional[Sequence[float]] = None, rule: str = 'score',
                      ignore_conflicts: bool = False) -> np.ndarray:
    """Paint instance masks into one semantic label map.

    Overlaps: instances are painted from lowest to highest priority, so the top one wins.
    ``rule='score'``: higher score on top (ties: smaller area on top); ``rule='area'``:
    smaller area on top (a small object in front of a large one, the usual case in COCO;
    ties: higher score on top). With ``ignore_conflicts`` a pixel covered by instances of
    two or more different classes becomes 255 instead.

    Args:
        masks: (N, H, W) bool instance masks.
        labels: (N,) label values in 1..254.
        img_shape: (H, W), used when N = 0.
        scores: (N,) confidences (None: all 1).
        rule: ``'score'`` or ``'area'``.
        ignore_conflicts: mark pixels of conflicting classes as 255.

    Returns:
        (H, W) uint8 map, 0 where no instance is.
    """
    if rule not in OVERLAP_RULES:
        raise ValueError(f'unknown overlap rule {rule!r}; choose one of {OVERLAP_RULES}')
    h, w = int(img_shape[0]), int(img_shape[1])
    masks = np.asarray(masks, bool).reshape(-1, h, w)
    labels = np.asarray(labels, np.int64).reshape(-1)
    n = len(masks)
    if len(labels) != n:
        raise ValueError(f'{n} masks but {len(labels)} labels')
    if n and (labels.min() < 1 or labels.max() >= IGNORE_INDEX):
        raise ValueError(f'instance labels must be in 1..{IGNORE_INDEX - 1} (0 is background), '
                         f'got {labels.min()}..{labels.max()}')
    scores = np.ones(n) if scores is None else np.asarray(scores, np.float64).reshape(-1)
    if len(scores) != n:
        raise ValueError(f'{n} masks but {len(scores)} scores')
    area = masks.sum(axis=(1, 2))
    # np.lexsort sorts by the LAST key first; painting order = ascending priority
    order = (np.lexsort((-area, scores)) if rule == 'score'
             else np.lexsort((scores, -area)))
    out = np.zeros((h, w), np.uint8)
    for i in order:
        out[masks[i]] = labels[i]
    if ignore_conflicts and n > 1:
        per_class = np.stack([masks[labels == c].any(0) for c in np.unique(labels)])
        out[per_class.sum(0) > 1] = IGNORE_INDEX
    return out


def coco_classes(coco: COCO) -> Tuple[Dict[int, int], List[str]]:
    """(category id -> label value 1..K, class names with 'background' at index 0)."""
    cat_ids = sorted(coco.getCatIds())
    if not cat_ids:
        raise ValueError('the annotation file has no categories')
    if len(cat_ids) >= IGNORE_INDEX:
        raise ValueError(f'{len(cat_ids)} categories do not fit a uint8 label map with 0 = '
                         f'background and {IGNORE_INDEX} = ignore')
    names = ['background'] + [coco.cats[c]['name'] for c in cat_ids]
    return {c: k + 1 for k, c in enumerate(cat_ids)}, names


def gt_label_map(coco: COCO, img_id: int, cat_to_label: Dict[int, int],
                 rule: str = 'area') -> np.ndarray:
    """(H, W) uint8 GT semantic map of one image from its instance annotations.

    Overlapping GT instances are resolved by ``rule`` (see :func:`compose_label_map`; COCO
    has no scores, so 'score' falls back to the area tie-break); crowd regions
    (``iscrowd=1``) are painted 255 (ignore) over everything, as they hold unlabelled
    instances.
    """
    info = coco.imgs[img_id]
    h, w = int(info['height']), int(info['width'])
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
    solid = [a for a in anns if not a.get('iscrowd', 0)]
    unknown = sorted({a['category_id'] for a in anns} - set(cat_to_label))
    if unknown:
        raise ValueError(f'image {img_id} has annotations of category ids {unknown} that are '
                         'not in the "categories" list of the annotation file')
    masks = (np.stack([coco.annToMask(a).astype(bool) for a in solid]) if solid
             else np.zeros((0, h, w), bool))
    out = compose_label_map(masks, [cat_to_label[a['category_id']] for a in solid], (h, w),
                            rule=rule)
    for a in anns:
        if a.get('iscrowd', 0):
            out[coco.annToMask(a).astype(bool)] = IGNORE_INDEX
    return out


def label_png_name(file_name: str) -> str:
    """The PNG name of an image's label map: its file name with a .png extension."""
    return osp.splitext(file_name)[0] + '.png'


def write_classes(path: str, class_names: Sequence[str]) -> None:
    """``classes.json``: the label value of each class name (index = value)."""
    with open(path, 'w') as f:
        json.dump(dict(classes=list(class_names), ignore_index=IGNORE_INDEX), f, indent=1)


def read_classes(path: str) -> List[str]:
    """Class names (index = label value) from a ``classes.json``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'class list not found: {path!r}; it is written next to the '
                                'label PNGs by tools/misc/sam_pseudo_labels.py')
    with open(path) as f:
        return list(json.load(f)['classes'])
