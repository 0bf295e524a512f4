"""Reference examples for in-context inference: prompts -> boxes, and COCO reference files.

A reference is one annotated instance of a class on some image. Users give it as a box, a
mask or a few points; every model kind of the plugin gets the raw prompt, and the box
derived from it (InSAM-DETR is box-prompted).

Reference files are small COCO JSONs (``images``, ``annotations`` with ``bbox`` and optional
``segmentation``, ``categories``), e.g. a subset of a COCO annotation file or the output of
``tools/misc/make_reference_sets.py`` (whose annotations carry a ``shot`` rank).
"""
import logging
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.logging import print_log

from ..datasets.reference_validation import (check_reference_doc, check_xywh, clip_to_image,
                                             image_hw, reference_box)
from ..utils.files import read_json
from ..utils.images import decode_coco_mask
from .target_images import header_hw

# Points are clicks on the object (ideally its extremes); their bounding box is grown by
# this fraction of its side on each side, and by at least POINT_MIN_PAD pixels.
POINT_MARGIN = 0.1
POINT_MIN_PAD = 2.0


@dataclass
class Reference:
    """One reference instance.

    Attributes:
        key: unique name of the reference (its tokens are stored under it).
        class_name: the class it is an example of.
        box: (4,) float32 xyxy box in original image pixels.
        source: image path, or ``'<array>'`` for an image given as an array.
        mask: optional (H, W) bool mask of the instance.
        points: optional (K, 2) float32 (x, y) clicks on the instance.
        category_id: the category id of its class in a COCO file, when it came from one.
        segmentation: the COCO ``segmentation`` (polygons or RLE) of a reference read from
            a file, with ``img_hw``; decoded only when asked (:meth:`instance_mask`).
    """
    key: str
    class_name: str
    box: np.ndarray
    source: str = '<array>'
    mask: Optional[np.ndarray] = field(default=None, repr=False)
    points: Optional[np.ndarray] = None
    category_id: Optional[int] = None
    segmentation: Optional[object] = field(default=None, repr=False)
    img_hw: Optional[Tuple[int, int]] = None

    def instance_mask(self) -> Optional[np.ndarray]:
        """(H, W) bool mask: the given one, else the decoded segmentation, else None."""
        if self.mask is None and self.segmentation and self.img_hw:
            return decode_coco_mask(self.segmentation, *self.img_hw).astype(bool)
        return self.mask


def prompt_to_box(img_hw: Tuple[int, int], *, box: Optional[Sequence[float]] = None,
                  mask: Optional[np.ndarray] = None,
                  points: Optional[Sequence[Sequence[float]]] = None,
                  point_margin: float = POINT_MARGIN, what: str = 'reference'
                  ) -> Tuple[np.ndarray, Optional[np.ndarray], Optional[np.ndarray]]:
    """The xyxy box of exactly one prompt, clipped to the image.

    - ``box``: xyxy in pixels, clipped to the image with a warning (fully outside it: an
      error).
    - ``mask``: (H, W) bool, the image's size; the tight box of its pixels
      (``[x_min, y_min, x_max + 1, y_max + 1]``, as COCO's bbox of a mask).
    - ``points``: (x, y) clicks on the object; their bounding box grown by ``point_margin``
      of its width/height on each side (at least :data:`POINT_MIN_PAD` px). Clicks on the
      object's extremes give the best box.

    Returns:
        (box (4,) float32, mask (H, W) bool or None, points (K, 2) float32 or None).

    Raises:
        ValueError: not exactly one prompt, a malformed one, or a degenerate box.
    """
    given = [n for n, v in (('box', box), ('mask', mask), ('points', points)) if v is not None]
    if len(given) != 1:
        raise ValueError(f'{what}: give exactly one of box=, mask=, points= (got '
                         f'{given or "none"})')
    h, w = img_hw
    pts = None
    if box is not None:
        try:
            b = np.asarray(box, np.float32).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f'{what}: box= must be 4 numbers x1, y1, x2, y2 in pixels, '
                             f'got {box!r}') from None
    elif mask is not None:
        mask = np.asarray(mask).astype(bool)
        if mask.shape != (h, w):
            raise ValueError(f'{what}: mask of shape {mask.shape} for an image of {(h, w)}')
        ys, xs = np.nonzero(mask)
        if not len(xs):
            raise ValueError(f'{what}: the mask is empty')
        b = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    else:
        pts = np.asarray(points, np.float32).reshape(-1, 2) if len(points) else None
        if pts is None or not np.isfinite(pts).all():
            raise ValueError(f'{what}: points must be a non-empty list of (x, y)')
        lo, hi = pts.min(0), pts.max(0)
        pad = np.maximum((hi - lo) * point_margin, POINT_MIN_PAD)
        b = np.concatenate([lo - pad, hi + pad]).astype(np.float32)
    clipped = clip_to_image(b, (h, w), what)
    if box is not None and not np.array_equal(clipped, b):
        print_log(f'{what}: box {b.tolist()} lies partly outside the {w}x{h} image; clipped '
                  f'to {clipped.tolist()}', logger='current', level=logging.WARNING)
    return clipped, mask, pts


def read_coco_references(path: str, img_dir: Optional[str] = None,
                         shots: Optional[int] = None,
                         classes: Optional[Sequence[str]] = None
                         ) -> Tuple[List[dict], Dict[str, int]]:
    """Read the references of a COCO-format JSON.

    Args:
        path: COCO JSON with ``images`` (``id``, ``file_name``), ``annotations`` (``id``,
            ``image_id``, ``category_id``, ``bbox`` xywh and/or ``segmentation``) and
            ``categories`` (``id``, ``name``).
        img_dir: folder the ``file_name`` s are relative to (default: the JSON's folder).
        shots: at most this many references per class: those with ``shot < shots`` when
            the annotations carry a ``shot`` rank (``make_reference_sets.py``), else the
            first ``shots`` in file order. Classes with fewer get a warning.
        classes: keep only these classes (names).

    Every annotation is checked by :mod:`mmsamantics.datasets.reference_validation`
    (integer ids, 4-number boxes) against the real size of its image, read from the file's
    header after EXIF orientation (the size the decoder gives): a ``height`` / ``width``
    that differs from it is a warning naming both sizes; a box partly outside the image is
    clipped with a warning, one fully outside it is an error. The declared size serves
    only when the image file is missing (which :func:`check_reference_images` reports).

    Returns:
        (references, category ids): one dict per reference (``key``, ``class_name``,
        ``img_path``, ``bbox`` xyxy, ``segmentation`` and ``img_hw`` or None,
        ``category_id``, ``file``: ``path``), grouped by class in the order of
        ``categories``; and ``{class name: category id}`` of the classes that have
        references.

    Raises:
        ValueError: malformed ids or boxes, unknown category or image id, a box fully
            outside its image, an unknown requested class, no reference at all; each
            names the file, the annotation id and the field.
    """
    if shots is not None and (isinstance(shots, bool) or int(shots) != shots or shots < 1):
        raise ValueError(f'shots must be an integer >= 1, got {shots!r}')
    doc = read_json(path, 'reference file')
    imgs, cats = check_reference_doc(doc, path)
    img_dir = osp.dirname(osp.abspath(path)) if img_dir is None else img_dir
    names = list(cats.values())
    if classes is not None:
        unknown = [c for c in classes if c not in names]
        if unknown:
            raise ValueError(f'classes {unknown} are not categories of {path!r} ({names})')
    src = osp.basename((doc.get('info') or {}).get('source_ann_file') or path)
    sizes = _ImageSizes(imgs, img_dir, path)
    refs, cat_ids, short, none = [], {}, [], []
    for cid, anns in _annotations_per_category(doc, cats).items():
        if classes is not None and cats[cid] not in classes:
            continue
        if anns and all('shot' in a for a in anns):
            anns = sorted(anns, key=lambda a: a['shot'])
            anns = [a for a in anns if shots is None or a['shot'] < shots]
        elif shots is not None:
            anns = anns[:shots]
        if shots is not None and 0 < len(anns) < shots:
            short.append(f'{cats[cid]!r}: {len(anns)}')
        for a in anns:
            refs.append(dict(sizes.box_and_mask(a), key=f'{src}:{a["id"]}',
                             class_name=cats[cid], img_path=sizes.path(a['image_id']),
                             category_id=cid, file=path))
        if anns:
            cat_ids[cats[cid]] = cid
        else:
            none.append(cats[cid])
    if none and refs:
        print_log(f'{len(none)} classes have no usable reference in {path} and will not be '
                  f'detected: {none}', logger='current', level=logging.WARNING)
    sizes.warn()
    if short:
        print_log(f'{shots} shots asked, but {path} has fewer references for '
                  f'{len(short)} classes, which use what they have: {", ".join(short)}',
                  logger='current', level=logging.WARNING)
    if not refs:
        raise ValueError(f'reference file {path!r} holds no usable reference (non-crowd '
                         'annotation of a requested class)')
    return refs, cat_ids


def _annotations_per_category(doc: dict, cats: Dict[int, str]) -> Dict[int, List[dict]]:
    """Non-crowd annotations per category id, in file order (ids checked before)."""
    per_cat: Dict[int, List[dict]] = {c: [] for c in cats}
    for a in doc['annotations']:
        if not a.get('iscrowd', 0):
            per_cat[a['category_id']].append(a)
    return per_cat


class _ImageSizes:
    """The real sizes of the images of a reference file, and its boxes checked against them.

    Collects the images whose declared size differs and the boxes that were clipped, for
    one warning each (:meth:`warn`).
    """

    def __init__(self, imgs: Dict[int, dict], img_dir: str, path: str) -> None:
        self.imgs, self.img_dir, self.file = imgs, img_dir, path
        self._hw: Dict[int, Optional[Tuple[int, int]]] = {}
        self.resized: List[str] = []  # "'a.jpg' declares 902x600, is 451x300"
        self.clipped: List[str] = []  # "annotation 3 [x, y, w, h] in 'a.jpg' (451x300)"

    def path(self, image_id: int) -> str:
        return osp.join(self.img_dir, self.imgs[image_id]['file_name'])

    def hw(self, image_id: int) -> Optional[Tuple[int, int]]:
        """(H, W) of the image file (EXIF orientation applied), else the declared one."""
        if image_id not in self._hw:
            im, declared = self.imgs[image_id], image_hw(self.imgs[image_id], self.file)
            real = header_hw(self.path(image_id)) if osp.isfile(self.path(image_id)) else None
            if real is not None and declared is not None and tuple(real) != tuple(declared):
                self.resized.append(f'{im["file_name"]!r} declares {_wxh(declared)}, is '
                                    f'{_wxh(real)}')
            self._hw[image_id] = real or declared
        return self._hw[image_id]

    def box_and_mask(self, ann: dict) -> dict:
        """``bbox`` (4,) xyxy checked against the real image (clipped), ``segmentation`` and
        ``img_hw`` (or None) of one annotation; the box comes from the mask when the
        annotation has none."""
        seg, hw = ann.get('segmentation') or None, self.hw(ann['image_id'])
        where = f'reference file {self.file!r}, annotation {ann.get("id")!r}'
        if isinstance(seg, dict) and seg.get('size') and hw and list(seg['size']) != list(hw):
            raise ValueError(f'{where}, field \'segmentation\': an RLE of {_wxh(seg["size"])} '
                             f'for an image of {_wxh(hw)}; encode the mask at the image\'s size')
        size = None if hw is None else dict(height=hw[0], width=hw[1])
        if ann.get('bbox') is not None:
            box = reference_box(ann, size, self.file)
            raw = check_xywh(ann['bbox'], self.file, ann.get('id'))
            if not np.array_equal(box, raw):
                self.clipped.append(f'annotation {ann.get("id")!r} {list(ann["bbox"])} in '
                                    f'{self.imgs[ann["image_id"]]["file_name"]!r} ({_wxh(hw)})')
        elif seg is not None and hw is not None:
            box, _, _ = prompt_to_box(hw, mask=decode_coco_mask(seg, *hw),
                                      what=f'{where}, field \'segmentation\'')
        else:
            raise ValueError(f'{where}: has no "bbox" (nor a "segmentation" with the image\'s '
                             'height and width)')
        return dict(bbox=box, segmentation=seg, img_hw=hw)

    def warn(self) -> None:
        """One warning for the declared sizes that differ, one for the clipped boxes."""
        if self.resized:
            print_log(f'{len(self.resized)} images of {self.file} are not the size the file '
                      'declares (height/width); their boxes are checked against the real size '
                      f'(after EXIF orientation): {"; ".join(self.resized[:5])}',
                      logger='current', level=logging.WARNING)
        if self.clipped:
            print_log(f'{len(self.clipped)} reference boxes of {self.file} lie partly outside '
                      f'their image and were clipped to it: {"; ".join(self.clipped[:5])}',
                      logger='current', level=logging.WARNING)


def _wxh(hw) -> str:
    """``'451x300'`` (width x height) of an (H, W)."""
    return f'{hw[1]}x{hw[0]}'


def check_reference_images(refs: Sequence[dict], path: str) -> None:
    """Raise FileNotFoundError naming the reference images of ``refs`` that do not exist."""
    missing = sorted({r['img_path'] for r in refs if not osp.isfile(r['img_path'])})
    if missing:
        raise FileNotFoundError(
            f'{len(missing)} reference images of {path} not found, e.g. {missing[:3]}: '
            'their file names are relative to img_dir (tools/infer.py --ref-img-dir; '
            'default: the folder of the references file)')
