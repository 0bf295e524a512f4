"""COCO instances JSON in and out for the annotation tool: RLE or polygons, prompts kept.

Each annotation is a standard COCO instance (``segmentation``, ``area``, ``bbox`` xywh,
``iscrowd`` 0) with one extra field, ``sambox``: the prompts that made it (``prompts``:
a list of ``{points: [[x, y, label]], box: [x1, y1, x2, y2] | null, mask_index}``), SAM's
predicted IoU of its mask(s) (``sam_iou``) and where it came from (``source``: ``click``, or
``find_rest:<model>`` with the in-context model's ``score``). pycocotools, the reference
readers of the plugin and ``tools/infer.py --refs`` ignore the extra field.
"""
import os.path as osp
import threading
from typing import Dict, List, Optional

import cv2
import numpy as np
import pycocotools.mask as mask_utils

from ..utils.rle import decode_mask, encode_mask
from ..utils.files import read_json, write_json_atomic

_SAVE_LOCK = threading.Lock()


def column_runs(mask: np.ndarray) -> List[int]:
    """Uncompressed COCO RLE counts (column-major runs, starting with zeros) of a mask: what
    the page decodes to draw the overlay."""
    flat = np.asarray(mask, bool).flatten(order='F')
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(edges).tolist()
    return ([0] + runs) if flat.size and flat[0] else runs


def mask_polygons(mask: np.ndarray) -> List[List[float]]:
    """Outer contours of a mask as COCO polygons (each ``[x1, y1, x2, y2, ...]``, >= 3 points).

    Holes are not represented (COCO polygons cannot); use RLE to keep them.
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        c = c.reshape(-1, 2).astype(float)
        if len(c) >= 3:
            polys.append([round(v, 2) for v in c.flatten().tolist()])
        else:  # a 1-2 px sliver: its pixel square
            x, y = c.min(0)
            polys.append([x, y, x + 1, y, x + 1, y + 1, x, y + 1])
    return polys


def coco_annotation(ann_id: int, image_id: int, category_id: int, rle: dict, extra: dict,
                    polygons: bool = False) -> dict:
    """One COCO instance annotation of an RLE mask, with the ``sambox`` extra field.

    Area and box come from the RLE itself (no decoding), so saving stays fast with many
    annotations; ``polygons`` decodes the mask and writes its outer contours instead.
    """
    r = dict(rle, counts=rle['counts'].encode('ascii'))
    box = [float(v) for v in mask_utils.toBbox(r)]
    seg = mask_polygons(decode_mask(rle)) if polygons else dict(rle)
    return dict(id=ann_id, image_id=image_id, category_id=category_id, segmentation=seg,
                area=float(mask_utils.area(r)), bbox=box, iscrowd=0, sambox=extra)


def atomic_write_json(path: str, doc: dict) -> None:
    """Write ``doc`` to ``path`` atomically (:func:`~mmsamantics.utils.files.write_json_atomic`)
    with concurrent writers (server threads, two tabs) serialised, the last one winning whole."""
    with _SAVE_LOCK:
        write_json_atomic(path, doc)


def check_folder_match(doc: dict, names: List[str], path: str, img_dir: str) -> None:
    """Refuse an annotation file made for another folder (its annotated images are not here).

    Raises:
        ValueError: naming the missing files and what to do.
    """
    images: Dict[int, str] = {im['id']: im['file_name'] for im in doc['images']}
    used = {images.get(a['image_id']) for a in doc['annotations']}
    missing = sorted(str(n) for n in used if n not in set(names))
    if missing:
        raise ValueError(
            f'{path!r} annotates {len(missing)} images that are not in {img_dir!r} (e.g. '
            f'{missing[:3]}): it was made for another image folder. Pass that folder, or '
            'another --out file to start new annotations here.')


def read_annotation_file(path: str) -> Optional[dict]:
    """The COCO JSON at ``path`` (None when it does not exist), checked for the three keys."""
    if not osp.isfile(path):
        return None
    doc = read_json(path, 'annotation file', 'Fix it, or pass another --out file.')
    if not isinstance(doc, dict) or not all(k in doc for k in ('images', 'annotations',
                                                                'categories')):
        raise ValueError(f'annotation file {path!r} is not a COCO instances file (it needs '
                         '"images", "annotations" and "categories"): pass another --out file')
    return doc
