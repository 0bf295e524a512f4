"""Fixed k-shot evaluation reference sets (paper §5.2 "Evaluation", Tables 2-3).

Re-implements the filters of the authors' ``create_eval_jsons``: for every class, up to
``max_shots`` reference instances are chosen once per seed (authors: 42, 123, 33) from the
TRAIN annotations and written to a COCO-format file, so every evaluation run, model and
``shots`` value uses the same references.

An annotation is **eligible** as a reference when it is

- not crowd (``iscrowd`` 0) and not degenerate (box width and height >= 1 px);
- ``min_area < area < max_area_frac * image area`` (the ``area`` field, i.e. the mask
  area in COCO; the box area where it is missing);
- not elongated: box ``w / h`` within ``[1 / max_aspect, max_aspect]``;
- away from the image edges: every box side at least ``border`` px from the image border;
- isolated: box IoU <= ``max_iou`` with EVERY other instance of its image (any class,
  crowd regions included), so the reference box shows one object.

Two selections write the same file format. ``authors`` (the default of
``tools/misc/make_reference_sets.py``; :mod:`~mmsamantics.datasets.reference_selection`)
follows the authors' procedure rule by rule. ``per-class`` (:func:`select_reference_set`)
uses the filters above and chooses per class, independently of the others:

1. the eligible annotations of the class, in ascending annotation id;
2. shuffled by ``np.random.default_rng([seed, category_id]).permutation`` (a stream per
   class, so a class's references do not change when other classes are added or removed,
   e.g. ``classes=novel`` picks the same novel references as all 80 classes);
3. walked in that order keeping the first candidate of each image (at most ONE reference
   per image in a class) until ``max_shots`` are kept;
4. sorted by area descending (ties: annotation id ascending) and numbered ``shot`` 0..n-1,
   so the k-shot set of any k <= n is the prefix ``shot < k`` (the authors' sorting).

Output file (COCO format, readable by pycocotools)::

    info:        description, source_ann_file, seed, max_shots, selection ('authors' or
                 'per-class'), procedure (in words), filters{every threshold},
                 classes_without_references [names], shots_available {name: n}; per-class
                 adds eligible_images {name: m}, authors excluded_ids, annotations_scanned
    images:      the source image dicts of the images used only
    annotations: the chosen source annotations unchanged (original id, image_id, bbox,
                 area, segmentation, category_id, iscrowd) plus ``shot`` (``area`` is
                 filled in with the box area where the source has none)
    categories:  all categories of the source, unchanged

Create the files with ``tools/misc/make_reference_sets.py``; read them with
:func:`load_reference_set`.
"""
import json
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.logging import print_log

from ..utils.checkpoint import MissingResourceError
from ..utils.files import read_json
from .reference_validation import check_reference_doc, reference_box

CocoLike = Union[str, os.PathLike, dict]
MAKE_HINT = ('Create it with `python tools/misc/make_reference_sets.py '
             'data/coco/annotations/instances_train2017.json --out-dir data/coco/references` '
             '(toy world: `... data/toy_world/annotations/instances_train.json --out-dir '
             'data/toy_world/refs_authors --min-area 256 --border 4 --frame 6`).')
SELECTION = ('per class: eligible annotations by ascending id, permuted by '
             'numpy.random.default_rng([seed, category_id]).permutation, first candidate '
             'per image kept until max_shots, then sorted by area descending (ties: id) '
             'and numbered shot 0..n-1')


def _load_coco(coco: CocoLike) -> Tuple[dict, Optional[str]]:
    """The COCO dict of ``coco`` (a dict, a pycocotools ``COCO`` or a path) and its path."""
    path = None
    if isinstance(coco, (str, os.PathLike)):
        path = os.fspath(coco)
        if not osp.isfile(path):
            raise MissingResourceError(
                f'annotation file not found: {path!r}. Pass the COCO instances JSON of the '
                'split references are drawn from (train), e.g. '
                'data/coco/annotations/instances_train2017.json.')
        with open(path) as f:
            coco = json.load(f)
    coco = getattr(coco, 'dataset', coco)  # pycocotools COCO object
    if not isinstance(coco, dict) or 'images' not in coco or 'categories' not in coco:
        raise ValueError(f'{path or "input"} is not a COCO instances dict (needs "images", '
                         '"annotations" and "categories")')
    if not coco.get('annotations'):
        raise ValueError(f'{path or "input"} has no annotations: references can only be '
                         'drawn from an annotated split (use the train instances file).')
    return coco, path


def _check_filters(min_area: float, max_area_frac: float, max_aspect: float,
                   border: float, max_iou: float) -> None:
    bad = []
    if min_area < 0:
        bad.append(f'min_area={min_area} must be >= 0')
    if not 0 < max_area_frac <= 1:
        bad.append(f'max_area_frac={max_area_frac} must be in (0, 1]')
    if max_aspect < 1:
        bad.append(f'max_aspect={max_aspect} must be >= 1 (w/h and h/w are both bounded)')
    if border < 0:
        bad.append(f'border={border} must be >= 0')
    if not 0 <= max_iou <= 1:
        bad.append(f'max_iou={max_iou} must be in [0, 1]')
    if bad:
        raise ValueError('invalid reference filters: ' + '; '.join(bad))


def _category_ids(coco: dict, classes: Optional[Sequence[str]]) -> List[int]:
    """Ids of the categories named in ``classes`` (all categories when None), ascending."""
    cats = coco['categories']
    if classes is None:
        return sorted(c['id'] for c in cats)
    if isinstance(classes, str):
        raise TypeError(f'classes must be a list of class names, got the string {classes!r}')
    by_name = {c['name']: c['id'] for c in cats}
    unknown = [c for c in classes if c not in by_name]
    if unknown:
        raise ValueError(f'unknown class names {unknown}; the annotation file has '
                         f'{sorted(by_name)}. Fix the names (or the --classes-file split).')
    return sorted({by_name[c] for c in classes})


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of xywh boxes ``a`` (R x 4) against ``b`` (N x 4): R x N."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, :2] + a[:, None, 2:], b[None, :, :2] + b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return inter / np.maximum(union, 1e-12)


def _ann_area(ann: dict) -> float:
    area = ann.get('area')
    return float(area) if area is not None else float(ann['bbox'][2] * ann['bbox'][3])


def eligible_references(coco: CocoLike,
                        *,
                        min_area: float = 32 * 32,
                        max_area_frac: float = 0.5,
                        max_aspect: float = 5.0,
                        border: float = 10,
                        max_iou: float = 0.35,
                        classes: Optional[Sequence[str]] = None) -> Dict[int, List[dict]]:
    """The annotations that pass the reference filters, per category (module docstring).

    Attribute filters are vectorised over all annotations; the IoU filter is one N x N
    box-IoU matrix per image that holds a candidate (COCO train2017: a few seconds).

    Args:
        coco: COCO instances dict, pycocotools ``COCO`` or path of the JSON file.
        min_area: exclusive lower bound on the instance area (authors: 32 * 32).
        max_area_frac: exclusive upper bound on area / image area (authors: 0.5).
        max_aspect: box w/h must lie in [1 / max_aspect, max_aspect] (authors: 5).
        border: minimum distance in px of the box to every image edge (authors: 10).
        max_iou: maximum box IoU with any other instance of the image (authors: 0.35).
        classes: class names to consider (default: all categories).

    Returns:
        dict category id -> eligible annotation dicts (the source dicts, not copies) in
        ascending annotation id; every considered category is a key, possibly empty.
    """
    coco, path = _load_coco(coco)
    _check_filters(min_area, max_area_frac, max_aspect, border, max_iou)
    cat_ids = _category_ids(coco, classes)
    anns = coco['annotations']
    ann_ids, img_ids, labels, crowd, area, boxes = _annotation_arrays(anns, path)
    x, y, w, h = boxes.T
    img_w, img_h = _image_sizes(coco['images'], img_ids, ann_ids, path)

    ok = ~crowd & (w >= 1) & (h >= 1) & np.isin(labels, cat_ids)
    ok &= (area > min_area) & (area < max_area_frac * img_w * img_h)
    with np.errstate(divide='ignore', invalid='ignore'):
        aspect = w / h
    ok &= (aspect >= 1 / max_aspect) & (aspect <= max_aspect)
    ok &= (x >= border) & (y >= border)
    ok &= (x + w <= img_w - border) & (y + h <= img_h - border)
    _keep_isolated(ok, img_ids, boxes, max_iou)

    out: Dict[int, List[dict]] = {c: [] for c in cat_ids}
    for i in np.flatnonzero(ok)[np.argsort(ann_ids[ok], kind='stable')]:
        out[int(labels[i])].append(anns[i])
    return out


def _annotation_arrays(anns: List[dict], path: Optional[str]) -> Tuple[np.ndarray, ...]:
    """Per annotation (N of them): ids, image ids, category ids, crowd flags, areas (box
    area where the annotation has none) and (N, 4) xywh boxes."""
    n = len(anns)
    try:
        ann_ids = np.fromiter((a['id'] for a in anns), np.int64, n)
        img_ids = np.fromiter((a['image_id'] for a in anns), np.int64, n)
        labels = np.fromiter((a['category_id'] for a in anns), np.int64, n)
        crowd = np.fromiter((bool(a.get('iscrowd', 0)) for a in anns), bool, n)
        area = np.fromiter((np.nan if a.get('area') is None else a['area'] for a in anns),
                           np.float64, n)
        boxes = np.array([a['bbox'] for a in anns], np.float64).reshape(n, 4)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f'{path or "input"}: malformed annotation ({type(e).__name__}: {e});'
                         ' every annotation needs id, image_id, category_id and a 4-number '
                         'bbox [x, y, w, h].') from e
    area = np.where(np.isnan(area), boxes[:, 2] * boxes[:, 3], area)
    return ann_ids, img_ids, labels, crowd, area, boxes


def _image_sizes(images: List[dict], img_ids: np.ndarray, ann_ids: np.ndarray,
                 path: Optional[str]) -> Tuple[np.ndarray, np.ndarray]:
    """(N,) width and (N,) height of the image of each annotation, via its image id."""
    n = len(img_ids)
    im_ids = np.array([im['id'] for im in images], np.int64)
    try:
        im_wh = np.array([[im['width'], im['height']] for im in images],
                         np.float64).reshape(-1, 2)
    except KeyError as e:
        raise ValueError(f'{path or "input"}: an image has no {e} field; reference filters '
                         'need every image width and height.') from e
    order = np.argsort(im_ids)
    pos = np.clip(np.searchsorted(im_ids[order], img_ids), 0, max(len(im_ids) - 1, 0))
    known = (im_ids[order][pos] == img_ids) if len(im_ids) else np.zeros(n, bool)
    if not known.all():
        bad = ann_ids[~known][:5].tolist()
        raise ValueError(f'{path or "input"}: annotations {bad} refer to image ids missing '
                         'from "images"; the file is inconsistent, regenerate it.')
    img_w, img_h = im_wh[order][pos].T
    return img_w, img_h


def _keep_isolated(ok: np.ndarray, img_ids: np.ndarray, boxes: np.ndarray,
                   max_iou: float) -> None:
    """Clear, in place, the candidates in ``ok`` whose box IoU with another instance of
    their image (any class, crowd included) exceeds ``max_iou``."""
    n = len(img_ids)
    by_img = np.argsort(img_ids, kind='stable')
    starts = np.flatnonzero(np.r_[True, np.diff(img_ids[by_img]) != 0])
    ends = np.r_[starts[1:], n]
    has_cand = np.logical_or.reduceat(ok[by_img], starts)
    for s, e in zip(starts[has_cand], ends[has_cand]):
        if e - s < 2:
            continue
        members = by_img[s:e]
        rows = members[ok[members]]
        iou = _box_iou(boxes[rows], boxes[members])
        iou[rows[:, None] == members[None]] = 0  # not against itself
        ok[rows] = iou.max(axis=1) <= max_iou


def check_selection_args(seed: int, max_shots: int) -> None:
    """Refuse a seed that is not a non-negative integer and ``max_shots < 1``."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f'seed must be a non-negative integer, got {seed!r}')
    if isinstance(max_shots, bool) or not isinstance(max_shots, (int, np.integer)) \
            or max_shots < 1:
        raise ValueError(f'max_shots must be an integer >= 1, got {max_shots!r}')


def reference_set_file(coco: dict, path: Optional[str], per_class: Dict[int, List[dict]],
                       seed: int, max_shots: int, info: dict) -> dict:
    """The reference-set dict (module docstring) of the chosen annotations.

    Args:
        coco: the source COCO dict. path: its file, for the messages and ``info``.
        per_class: category id -> chosen annotations, already in ``shot`` order; the file
            lists the classes in this order.
        info: selection-specific ``info`` fields (``selection``, ``filters``...).
    """
    names = {c['id']: c['name'] for c in coco['categories']}
    chosen = [dict(a, area=_ann_area(a), shot=k)
              for kept in per_class.values() for k, a in enumerate(kept)]
    if not chosen:
        raise ValueError(f'no annotation of {path or "the input"} passes the reference '
                         f'filters {info.get("filters", "(defaults)")}; loosen them (e.g. '
                         '--min-area, --border for small images) or check the file.')
    used = {a['image_id'] for a in chosen}
    head = dict(
        description='mmsamantics k-shot evaluation reference set (create_eval_jsons filters)',
        source_ann_file=osp.basename(path) if path else None,
        seed=int(seed), max_shots=int(max_shots))
    tail = dict(classes_without_references=[names[c] for c, v in per_class.items() if not v],
                shots_available={names[c]: len(v) for c, v in per_class.items()})
    return dict(info=dict(head, **info, **tail),
                images=sorted((im for im in coco['images'] if im['id'] in used),
                              key=lambda im: im['id']),
                annotations=chosen,
                categories=list(coco['categories']))


def select_reference_set(coco: CocoLike, seed: int, max_shots: int = 10,
                         **filters) -> dict:
    """Choose up to ``max_shots`` references per class, each class on its own stream
    (procedure: module docstring; ``--selection per-class`` of make_reference_sets.py).

    Args:
        coco: COCO instances dict, pycocotools ``COCO`` or path (the TRAIN annotations).
        seed: non-negative integer; the same seed always gives the same set.
        max_shots: references kept per class (one per image); k-shot = ``shot < k``.
        **filters: keyword arguments of :func:`eligible_references` (``min_area``,
            ``max_area_frac``, ``max_aspect``, ``border``, ``max_iou``, ``classes``).

    Returns:
        A COCO-format dict (see the module docstring for its fields).
    """
    check_selection_args(seed, max_shots)
    coco, path = _load_coco(coco)
    eligible = eligible_references(coco, **filters)
    names = {c['id']: c['name'] for c in coco['categories']}
    per_class = {}
    for cat_id, cands in eligible.items():
        rng = np.random.default_rng([int(seed), cat_id])
        kept, seen = [], set()
        for j in rng.permutation(len(cands)):
            if cands[j]['image_id'] not in seen:
                seen.add(cands[j]['image_id'])
                kept.append(cands[j])
                if len(kept) == max_shots:
                    break
        per_class[cat_id] = sorted(kept, key=lambda a: (-_ann_area(a), a['id']))
    defaults = dict(min_area=32 * 32, max_area_frac=0.5, max_aspect=5.0, border=10,
                    max_iou=0.35, classes=None)
    info = dict(selection='per-class', procedure=SELECTION,
                filters=dict(defaults, **filters),
                eligible_images={names[c]: len({a['image_id'] for a in v})
                                 for c, v in eligible.items()})
    return reference_set_file(coco, path, per_class, seed, max_shots, info)


def load_reference_set(path: str, shots: int) -> Dict[int, List[dict]]:
    """Read a reference-set file and return its k-shot prefix per class.

    Args:
        path: a file written by ``tools/misc/make_reference_sets.py``.
        shots: k; the references with ``shot < k`` of each class are returned.

    Returns:
        dict category id -> up to ``shots`` annotation dicts, ordered by ``shot`` (area
        descending). A class with fewer than ``shots`` references gets a warning and keeps
        what it has; classes with none are absent.
    """
    if isinstance(shots, bool) or not isinstance(shots, (int, np.integer)) or shots < 1:
        raise ValueError(f'shots must be an integer >= 1 (k of k-shot), got {shots!r}')
    ref = read_json(path, 'reference-set file', MAKE_HINT)
    anns = ref.get('annotations') if isinstance(ref, dict) else None
    if not anns or any('shot' not in a for a in anns):
        raise ValueError(f'{path!r} is not a reference-set file (annotations without a '
                         '"shot" field; a plain COCO annotation file?). ' + MAKE_HINT)
    names = {c['id']: c['name'] for c in ref.get('categories', [])}
    per_cat: Dict[int, List[dict]] = {}
    for a in sorted(anns, key=lambda a: (a['category_id'], a['shot'])):
        per_cat.setdefault(a['category_id'], []).append(a)
    counts = dict(ref.get('info', {}).get('shots_available') or
                  {names.get(c, str(c)): len(v) for c, v in per_cat.items()})
    short = {n: k for n, k in counts.items() if k < shots}
    for name, k in short.items():
        what = (f'has only {k} reference(s) in {path} for {shots}-shot evaluation; it uses '
                'those' if k else f'has no reference in {path}; it cannot be queried')
        print_log(f'class {name!r} {what}.', logger='current', level=logging.WARNING)
    return {c: v[:shots] for c, v in sorted(per_cat.items())}


def reference_set_entries(path: str, shots: int, img_prefix: str,
                          classes: Sequence[str]) -> Dict[int, List[dict]]:
    """The first ``shots`` references of every class of ``classes`` in a reference-set file,
    as dataset entries: {label: [dict(img_path, img_id, label, bbox, key, segmentation,
    img_hw)]}, keyed ``'<source annotation file>:<annotation id>'`` like the references
    drawn from that file, so banks and caches find them either way."""
    doc = read_json(path, 'reference-set file')
    imgs, cats = check_reference_doc(doc, path)  # before anything sorts its ids
    chosen = load_reference_set(path, shots)
    src = (doc.get('info') or {}).get('source_ann_file') or osp.basename(path)
    name2label = {n: i for i, n in enumerate(classes)}
    refs: Dict[int, List[dict]] = {}
    for cat_id, anns in chosen.items():
        label = name2label.get(cats[cat_id])
        if label is None:
            continue
        refs[label] = [dict(
            img_path=osp.join(img_prefix, imgs[a['image_id']]['file_name']),
            img_id=a['image_id'], label=label,
            bbox=reference_box(a, imgs[a['image_id']], path).tolist(),
            key=f'{osp.basename(src)}:{a["id"]}', segmentation=a.get('segmentation'),
            img_hw=(imgs[a['image_id']]['height'], imgs[a['image_id']]['width']))
            for a in anns]
    missing = [c for c, i in name2label.items() if not refs.get(i)]
    if missing:
        raise ValueError(f'classes without references in {path}: {missing}. Make the '
                         'reference set with looser filters (make_reference_sets.py '
                         '--min-area/--border/--max-iou) or remove them from '
                         'metainfo.classes.')
    return refs
