"""The annotations of one image folder: classes, instances, undo, autosave to COCO JSON.

Instances keep their mask as COCO RLE and the prompts that made them. In ``instance`` mode
each accepted mask is its own instance; in ``semantic`` mode a mask of a class already
present on the image is unioned into that instance (its prompts appended), as SAMBOX does
for stuff-like classes. Every change is written at once (atomically) to the output file.
"""
import copy
import threading
from typing import Dict, List, Optional

import numpy as np

from ..utils.images import decode_coco_mask
from .coco_io import (atomic_write_json, check_folder_match, coco_annotation, decode_mask,
                      encode_mask, read_annotation_file)
from .image_folder import ImageFolder

MODES = ('instance', 'semantic')
UNDO_DEPTH = 100


class AnnotationStore:
    """Classes and instances of an :class:`ImageFolder`, saved to ``out_path`` on every change.

    Args:
        folder: the images.
        out_path: the COCO JSON written (and resumed from when it exists).
        classes: class names to start with (added after those of a resumed file).

    Raises:
        ValueError: ``out_path`` is not a COCO file or annotates images of another folder.
    """

    def __init__(self, folder: ImageFolder, out_path: str,
                 classes: Optional[List[str]] = None) -> None:
        self.folder = folder
        self.out_path = out_path
        self.mode = 'instance'
        self.categories: List[dict] = []  # {id, name}, shortcut = position + 1
        self.instances: Dict[int, dict] = {}  # id -> {id, image, category_id, rle, sambox}
        self.next_id = 1
        self._history: List[tuple] = []
        self._lock = threading.RLock()
        doc = read_annotation_file(out_path)
        if doc is not None:
            self._load(doc)
        for name in classes or []:
            if name not in self.category_names():
                self.add_category(name, record=False)

    # ------------------------------------------------------------------ load / save
    def _load(self, doc: dict) -> None:
        check_folder_match(doc, self.folder.names, self.out_path, self.folder.root)
        names = {im['id']: im['file_name'] for im in doc['images']}
        self.categories = [dict(id=int(c['id']), name=str(c['name'])) for c in doc['categories']]
        self.mode = (doc.get('sambox') or {}).get('mode', 'instance')
        for a in doc['annotations']:
            name = names[a['image_id']]
            h, w = self.folder.sizes[name]
            seg = a['segmentation']
            if isinstance(seg, list) or isinstance(seg.get('counts'), list):  # polygons
                seg = encode_mask(decode_coco_mask(seg, h, w).astype(bool))
            self.instances[int(a['id'])] = dict(
                id=int(a['id']), image=name, category_id=int(a['category_id']), rle=seg,
                sambox=a.get('sambox') or dict(prompts=[], sam_iou=None, source='imported'))
        self.next_id = max(self.instances, default=0) + 1

    def to_coco(self, polygons: bool = False) -> dict:
        """The annotations as a COCO instances dict (image ids = position in the folder + 1).

        Args:
            polygons: segmentation as polygons (outer contours) instead of RLE.
        """
        with self._lock:
            images = [dict(id=i + 1, file_name=n, height=self.folder.sizes[n][0],
                           width=self.folder.sizes[n][1])
                      for i, n in enumerate(self.folder.names)]
            anns = [coco_annotation(a['id'], self.folder.index(a['image']) + 1,
                                    a['category_id'], a['rle'], copy.deepcopy(a['sambox']),
                                    polygons)
                    for a in sorted(self.instances.values(), key=lambda a: a['id'])]
            return dict(info=dict(description='SAMBOX annotations'), images=images,
                        annotations=anns, categories=[dict(c, supercategory='')
                                                      for c in self.categories],
                        sambox=dict(mode=self.mode))

    def save(self) -> None:
        """Write :meth:`to_coco` to the output file atomically (under the store's lock, so a
        slower save can never overwrite a newer state with an older one)."""
        with self._lock:
            atomic_write_json(self.out_path, self.to_coco())

    # ------------------------------------------------------------------ undo
    def _record(self) -> None:
        self._history.append((copy.deepcopy(self.instances), copy.deepcopy(self.categories),
                              self.next_id, self.mode))
        del self._history[:-UNDO_DEPTH]

    def undo(self) -> bool:
        """Revert the last change (instance, class or mode); False when there is none."""
        with self._lock:
            if not self._history:
                return False
            self.instances, self.categories, self.next_id, self.mode = self._history.pop()
            self.save()
            return True

    # ------------------------------------------------------------------ classes
    def category_names(self) -> List[str]:
        return [c['name'] for c in self.categories]

    def category_id(self, name_or_id) -> int:
        """The id of a class given by id or name (KeyError naming the known classes)."""
        for c in self.categories:
            if name_or_id in (c['id'], c['name']):
                return c['id']
        raise KeyError(f'unknown class {name_or_id!r}; classes: {self.category_names()}')

    def add_category(self, name: str, record: bool = True) -> int:
        """Add a class (or return the id of an existing one of that name)."""
        name = (name or '').strip() if isinstance(name, str) else ''
        if not name:
            raise ValueError('a class name must be a non-empty string')
        with self._lock:
            if name in self.category_names():
                return self.category_id(name)
            if record:
                self._record()
            cid = max((c['id'] for c in self.categories), default=0) + 1
            self.categories.append(dict(id=cid, name=name))
            self.save()
            return cid

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
        with self._lock:
            if mode != self.mode:
                self._record()
                self.mode = mode
                self.save()

    # ------------------------------------------------------------------ instances
    def add_instance(self, image: str, category, mask: np.ndarray, prompts: List[dict],
                     sam_iou: Optional[float], source: str = 'click',
                     score: Optional[float] = None) -> dict:
        """Store a mask of ``image`` (a listed name) as ``category`` (name or id).

        In ``semantic`` mode the mask joins the instance of the same class on the image.

        Returns:
            The stored instance (``id``, ``image``, ``category_id``, ``rle``, ``sambox``).
        """
        self.folder.index(image)
        cid = self.category_id(category)
        if mask.shape != self.folder.sizes[image]:
            raise ValueError(f'mask of shape {mask.shape} for image {image!r} of '
                             f'{self.folder.sizes[image]}')
        if not mask.any():
            raise ValueError('the mask is empty: click on the object or drag a box around it')
        with self._lock:
            self._record()
            same = [a for a in self.instances.values()
                    if a['image'] == image and a['category_id'] == cid]
            if self.mode == 'semantic' and same:
                inst = same[0]
                inst['rle'] = encode_mask(decode_mask(inst['rle']) | mask)
                inst['sambox']['prompts'] += prompts
                inst['sambox']['sam_iou'] = _as_list(inst['sambox']['sam_iou']) + [sam_iou]
            else:
                extra = dict(prompts=prompts, sam_iou=sam_iou, source=source)
                if score is not None:
                    extra['score'] = score
                inst = dict(id=self.next_id, image=image, category_id=cid,
                            rle=encode_mask(mask), sambox=extra)
                self.instances[inst['id']] = inst
                self.next_id += 1
            self.save()
            return inst

    def get(self, ann_id: int) -> dict:
        if ann_id not in self.instances:
            raise KeyError(f'no annotation with id {ann_id}')
        return self.instances[ann_id]

    def relabel(self, ann_id: int, category) -> dict:
        cid = self.category_id(category)
        with self._lock:
            inst = self.get(ann_id)
            self._record()
            inst['category_id'] = cid
            self.save()
            return inst

    def delete(self, ann_id: int) -> None:
        with self._lock:
            self.get(ann_id)
            self._record()
            del self.instances[ann_id]
            self.save()

    def of_image(self, image: str) -> List[dict]:
        """The instances of one listed image, by id."""
        self.folder.index(image)
        with self._lock:
            return [a for a in sorted(self.instances.values(), key=lambda a: a['id'])
                    if a['image'] == image]


def _as_list(v) -> list:
    return list(v) if isinstance(v, list) else ([] if v is None else [v])
