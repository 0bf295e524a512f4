"""The one check of reference annotations, for every reader of them.

References reach the models from COCO-format files (``add_references_from_coco``,
``tools/infer.py --refs``, reference-set files of ``make_reference_sets.py``, the reference
pool of :class:`InContextCocoDataset`) and from users' boxes (``add_reference``). Every one
of them goes through the functions here, so a reference is either used as the model will
see it or refused with one error that names the file, the annotation id and the field:

- ids (``id``, ``image_id``, ``category_id``) are integers, not strings or booleans;
- ``bbox`` is 4 finite numbers ``[x, y, w, h]`` (COCO) with ``w, h >= 1``;
- a box partly outside its image is clipped to it; a box fully outside it is an error
  (the reference would show nothing of the object);
- images have positive integer ``height`` / ``width`` when given, and unique ids.

Boxes are returned xyxy (x1, y1, x2, y2) in original image pixels, float32.
"""
import math
from numbers import Integral, Real
from typing import Dict, Optional, Sequence, Tuple

import numpy as np


def _where(path: Optional[str], ann_id=None, field: Optional[str] = None) -> str:
    """``reference file 'refs.json', annotation 12, field 'bbox'`` (the parts given)."""
    parts = [f'reference file {path!r}' if path else 'reference']
    if ann_id is not None:
        parts.append(f'annotation {ann_id!r}')
    if field:
        parts.append(f'field {field!r}')
    return ', '.join(parts)


def check_id(value, path: Optional[str], ann_id, field: str) -> int:
    """``value`` as an int, or a ValueError naming the file, annotation and field.

    JSON numbers and numpy integers are accepted; strings (``"101"``), booleans, floats and
    missing values are not: a string id would never match the integer ids of the other
    lists and the reference would silently get no class or no image.
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        got = 'nothing' if value is None else f'{type(value).__name__} {value!r}'
        hint = f' (write {value} without quotes)' if isinstance(value, str) and \
            value.strip().lstrip('-').isdigit() else ''
        raise ValueError(f'{_where(path, ann_id, field)}: must be an integer id, got '
                         f'{got}{hint}')
    return int(value)


def check_xywh(bbox, path: Optional[str], ann_id) -> np.ndarray:
    """COCO ``bbox`` [x, y, w, h] -> (4,) float32 xyxy; 4 finite numbers, ``w, h >= 1``."""
    what = _where(path, ann_id, 'bbox')
    if isinstance(bbox, (str, bytes)) or not isinstance(bbox, Sequence) or len(bbox) != 4 \
            or not all(isinstance(v, Real) and not isinstance(v, bool) for v in bbox):
        raise ValueError(f'{what}: must be 4 numbers [x, y, width, height] in pixels, got '
                         f'{bbox!r}')
    if not all(math.isfinite(float(v)) for v in bbox):
        raise ValueError(f'{what}: must be finite numbers, got {list(bbox)}')
    x, y, w, h = (float(v) for v in bbox)
    if w < 1 or h < 1:
        raise ValueError(f'{what}: degenerate box {list(bbox)} (width and height must be at '
                         'least 1 px)')
    return np.array([x, y, x + w, y + h], np.float32)


def clip_to_image(box: np.ndarray, img_hw: Optional[Tuple[int, int]], what: str) -> np.ndarray:
    """xyxy ``box`` clipped to an image of ``img_hw`` (H, W); None leaves it as is.

    Raises:
        ValueError: not 4 finite numbers, a box fully outside the image, or one less than
            1 px wide or high after clipping.
    """
    box = np.asarray(box, np.float32).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all():
        raise ValueError(f'{what}: a box is 4 finite numbers x1, y1, x2, y2; got '
                         f'{box.tolist()}')
    if img_hw is not None:
        h, w = (float(v) for v in img_hw)
        x1, y1, x2, y2 = box.tolist()
        if x2 <= 0 or y2 <= 0 or x1 >= w or y1 >= h:
            raise ValueError(f'{what}: box {box.tolist()} (xyxy) lies fully outside its '
                             f'{int(w)}x{int(h)} image; fix the box or the image size')
        box = np.clip(box, 0, [w, h, w, h]).astype(np.float32)
    x1, y1, x2, y2 = box.tolist()
    if not (x2 - x1 >= 1 and y2 - y1 >= 1):
        raise ValueError(f'{what}: degenerate box {box.tolist()} (xyxy); give a box at least '
                         '1 px wide and high inside the image')
    return box


def image_hw(image: dict, path: Optional[str]) -> Optional[Tuple[int, int]]:
    """(height, width) of a COCO image entry, None when it gives neither; checked."""
    if 'height' not in image and 'width' not in image:
        return None
    hw = []
    for field in ('height', 'width'):
        v = image.get(field)
        if isinstance(v, bool) or not isinstance(v, Integral) or v < 1:
            raise ValueError(f'{_where(path)}, image {image.get("id")!r}, field {field!r}: '
                             f'must be a positive integer, got {v!r}')
        hw.append(int(v))
    return hw[0], hw[1]


def reference_box(ann: dict, image: Optional[dict], path: Optional[str]) -> np.ndarray:
    """The (4,) float32 xyxy box of a COCO annotation, checked and clipped to its image."""
    box = check_xywh(ann.get('bbox'), path, ann.get('id'))
    hw = image_hw(image, path) if image is not None else None
    return clip_to_image(box, hw, _where(path, ann.get('id'), 'bbox'))


def check_reference_doc(doc, path: Optional[str]) -> Tuple[Dict[int, dict], Dict[int, str]]:
    """Check the structure and ids of a COCO reference document.

    Returns:
        ({image id: image dict}, {category id: name}).

    Raises:
        ValueError: missing lists, non-integer or duplicate ids, non-string or duplicate
            category names, an annotation whose image or category is not listed.
    """
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in (
            'images', 'annotations', 'categories')):
        raise ValueError(f'{_where(path)} must be COCO JSON with the lists "images", '
                         '"annotations" and "categories"')
    cats: Dict[int, str] = {}
    for c in doc['categories']:
        cid = check_id(c.get('id'), path, None, f'categories[].id of {c.get("name")!r}')
        if not isinstance(c.get('name'), str) or not c['name'].strip():
            raise ValueError(f'{_where(path)}, category {cid}: "name" must be a non-empty '
                             f'string, got {c.get("name")!r}')
        if cid in cats or c['name'] in cats.values():
            raise ValueError(f'{_where(path)}: category id {cid} or name {c["name"]!r} is '
                             'listed twice in "categories"')
        cats[cid] = c['name']
    imgs: Dict[int, dict] = {}
    for im in doc['images']:
        iid = check_id(im.get('id'), path, None, f'images[].id of {im.get("file_name")!r}')
        if iid in imgs:
            raise ValueError(f'{_where(path)}: image id {iid} is listed twice in "images"')
        image_hw(im, path)
        imgs[iid] = im
    seen = set()
    for a in doc['annotations']:
        aid = check_id(a.get('id'), path, a.get('id'), 'id')
        if aid in seen:
            raise ValueError(f'{_where(path)}: annotation id {aid} is used twice')
        seen.add(aid)
        for field, known in (('category_id', cats), ('image_id', imgs)):
            v = check_id(a.get(field), path, aid, field)
            if v not in known:
                lst = 'categories' if field == 'category_id' else 'images'
                raise ValueError(f'{_where(path, aid, field)}: {field[:-3]} id {v} is not '
                                 f'in "{lst}"'
                                 + (f' ({sorted(known)})' if lst == 'categories' else ''))
    return imgs, cats
