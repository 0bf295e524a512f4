"""Base/novel class splits (COCO-NOVEL) and base-only training annotations.

COCO-NOVEL (Kang et al.; SPEC §2): NOVEL = the 20 PASCAL VOC classes, BASE = the other 60
COCO classes. A model is trained on base-class annotations only and evaluated on all
classes with AP reported per split (:class:`InContextCocoMetric` ``class_splits``).
"""
import copy
import json
import os.path as osp
from typing import Dict, List, Optional

from ..utils.checkpoint import MissingResourceError

COCO_NOVEL_CLASSES = [
    'airplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
    'dining table', 'dog', 'horse', 'motorcycle', 'person', 'potted plant', 'sheep', 'couch',
    'train', 'tv']


def coco_novel_splits(coco: dict) -> Dict[str, List[str]]:
    """``{'base': [...60], 'novel': [...20]}`` in category-id order of a COCO dict."""
    names = [c['name'] for c in sorted(coco['categories'], key=lambda c: c['id'])]
    missing = [c for c in COCO_NOVEL_CLASSES if c not in names]
    if missing:
        raise ValueError(f'not a COCO 2017 annotation file: no categories {missing}; give '
                         'the splits with --splits-file for other datasets')
    return dict(base=[n for n in names if n not in COCO_NOVEL_CLASSES],
                novel=[n for n in names if n in COCO_NOVEL_CLASSES])


def load_splits(path: str) -> Dict[str, List[str]]:
    """A ``{split: [class names]}`` JSON (e.g. the toy world's splits.json)."""
    if not osp.isfile(path):
        raise MissingResourceError(f'class splits file not found: {path!r}')
    with open(path) as f:
        splits = json.load(f)
    if not isinstance(splits, dict) or 'base' not in splits:
        raise ValueError(f'{path} must map split names (at least "base") to class names')
    return splits


def keep_classes(coco: dict, classes: List[str], drop_empty_images: bool = False,
                 note: Optional[str] = None) -> dict:
    """A copy of ``coco`` whose annotations are only those of ``classes``.

    Categories are all kept (ids unchanged) so label spaces and evaluation stay aligned;
    images left without annotations are kept unless ``drop_empty_images``.
    """
    names = {c['name']: c['id'] for c in coco['categories']}
    unknown = [c for c in classes if c not in names]
    if unknown:
        raise ValueError(f'classes {unknown} are not categories of the annotation file')
    keep = {names[c] for c in classes}
    out = {k: v for k, v in coco.items() if k not in ('annotations', 'images')}
    out['annotations'] = [a for a in coco['annotations'] if a['category_id'] in keep]
    used = {a['image_id'] for a in out['annotations']}
    out['images'] = [im for im in coco['images'] if not drop_empty_images or im['id'] in used]
    info = copy.deepcopy(coco.get('info') or {})
    info['kept_classes'] = sorted(classes, key=lambda c: names[c])
    if note:
        info['note'] = note
    out['info'] = info
    return out
