"""COCO-format dataset whose samples carry in-context references (InSAM-DETR, paper §5.2).

Every sample is a target image plus a list of references ``{img_path, bbox, label, key,
segmentation, img_hw}``, each one annotated instance of a class taken from ANOTHER image
(``segmentation``: its COCO polygon/RLE or None, decoded only for
``LoadInContextReferences(with_mask=True)``; ``img_hw``: its image's (height, width)). The
detector is asked, once per reference class, to find every instance of it in the target.

Modes:
    ``train``:  per target, the classes present (at most ``max_classes_per_image``, sampled)
        each get one random reference (``train_shots``: 1 to k, k-shot episodes) from
        another image of the reference pool; optional negative classes (absent from the
        target) teach the model to answer "none".
        Deterministic given ``ref_seed``, the epoch (:class:`InContextEpochHook`) and index.
    ``oracle``: evaluation; query only the classes present in the target (the paper's
        protocol), with a fixed k-shot reference set chosen once from ``ref_ann_file``.
    ``open``:   evaluation; query every class that has references (the realistic setting).
"""
import copy
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional

import numpy as np
from mmengine.logging import print_log
from pycocotools.coco import COCO

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from ..utils.checkpoint import MissingResourceError
from .class_splits import split_metainfo
from .reference_controls import control_donors, describe_control, normalize_control
from .reference_pool import ReferencePool
from .reference_sets import reference_set_entries
from .reference_validation import reference_box

MODES = ('train', 'oracle', 'open')
CLASS_SAMPLING = ('with_references', 'authors')  # see the class docstring


@DATASETS.register_module()
class InContextCocoDataset(CocoDataset):
    """COCO dataset with reference sampling for in-context detection.

    Args:
        mode: ``'train'``, ``'oracle'`` or ``'open'`` (see module docstring).
        ref_ann_file: COCO JSON the references are drawn from. Default: the dataset's own
            ``ann_file`` (train); evaluation needs the TRAIN annotations here so references
            never come from the images being evaluated.
        ref_img_prefix: image folder of ``ref_ann_file`` (default: ``data_prefix['img']``).
        max_classes_per_image: classes queried per training target (authors: 4).
        neg_classes_per_image: absent classes also queried per training target (0 = paper).
        shots: references per class in evaluation (k-shot; tokens are averaged per class).
        shot_index: evaluation only (``shots=1``): every class queried with reference
            ``shot_index`` (0-based) of its k-shot draw alone: the single shots a k-shot
            result is compared with (one shot can be unusually good or bad). Logged.
        train_shots: training: each queried class gets between 1 and ``train_shots``
            distinct references (uniform), so a model evaluated with k shots was trained on
            the averages it will see; default 1 (the paper: one reference per class).
        ref_seed: seed of every reference choice.
        ref_min_area: minimum area of a reference instance (authors: 32 * 32).
        query_classes: evaluation classes to query in ``open`` mode (default: all).
        ref_set_file: evaluation only: a reference-set JSON written by
            ``tools/misc/make_reference_sets.py`` (the authors' filters, one file per seed);
            the k-shot references of each class are its first ``shots`` (largest first).
            Replaces the random choice from ``ref_ann_file``, which is then not read.
        class_split: the dataset's classes by name, so configs never list them: a name of
            :func:`~mmsamantics.datasets.class_splits.split_classes` (``'coco-base'``,
            ``'toy'``, ``'coco-20i-fold0-test'``...) or ``'ann_file'`` (every category of
            ``ann_file``). Default None: ``metainfo['classes']``, else all 80 COCO classes.
            Giving both ``class_split`` and a different ``metainfo['classes']`` is an error.
        ref_flip_prob: training: mirror each reference with this probability (authors: 0.5,
            their RandomFlip); default 0. Needs reference images; key suffix ``':flip'``.
        class_sampling: training: ``'with_references'`` draws the target's classes among
            those with a reference; ``'authors'`` draws among all, then drops the others.
        ref_control: None (normal) or a reference control
            (:mod:`.reference_controls`: ``'cyclic'``, ``'random-<seed>'``,
            ``'same-attribute'``, ``'same-kind'``, ``'blank'``); evaluation modes only. An
            active control is logged when the dataset is built and named in
            ``metainfo['reference_control']`` (the metric records it). Keys of a donor's
            references are unchanged (their features do not depend on the class they are
            queried for); blank ones get a ``':blank'`` suffix so no cache or bank confuses
            them with the real reference.
        **kwargs: :class:`mmdet.datasets.CocoDataset` arguments.
    """

    def __init__(self,
                 *args,
                 mode: str = 'train',
                 ref_ann_file: Optional[str] = None,
                 ref_img_prefix: Optional[str] = None,
                 max_classes_per_image: int = 4,
                 neg_classes_per_image: int = 0,
                 shots: int = 1,
                 shot_index: Optional[int] = None,
                 train_shots: int = 1,
                 ref_seed: int = 0,
                 ref_min_area: float = 32 * 32,
                 query_classes: Optional[List[str]] = None,
                 ref_set_file: Optional[str] = None,
                 class_split: Optional[str] = None,
                 ref_control: Optional[str] = None,
                 ref_flip_prob: float = 0.0,
                 class_sampling: str = 'with_references',
                 **kwargs) -> None:
        if mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {mode!r}')
        ref_control = normalize_control(ref_control)
        if ref_control is not None and mode == 'train':
            raise ValueError('ref_control is an evaluation control: use it with '
                             "mode='oracle' or 'open'")
        self.ref_control = ref_control
        if not 0 <= ref_flip_prob <= 1 or class_sampling not in CLASS_SAMPLING:
            raise ValueError(f'ref_flip_prob must be in [0, 1] (got {ref_flip_prob}) and '
                             f'class_sampling one of {CLASS_SAMPLING} (got {class_sampling!r})')
        self.ref_flip_prob, self.class_sampling = ref_flip_prob, class_sampling
        if shots < 1 or train_shots < 1:
            raise ValueError(f'shots and train_shots must be >= 1, got {shots}, {train_shots}')
        self.mode = mode
        self._ref_ann_file = ref_ann_file
        self._ref_img_prefix = ref_img_prefix
        self.max_classes_per_image = max_classes_per_image
        self.neg_classes_per_image = neg_classes_per_image
        self.shots, self.train_shots = shots, train_shots
        if shot_index is not None and (mode == 'train' or shots != 1 or shot_index < 0):
            raise ValueError("shot_index (one reference of the k-shot draw) needs mode="
                             f"'oracle'/'open', shots=1 and shot_index >= 0; got {mode!r}, "
                             f'shots={shots}, shot_index={shot_index}')
        self.shot_index = shot_index
        # the draw the references are picked from: shots, or the first shot_index + 1
        self._draw_shots = shots if shot_index is None else shot_index + 1
        self.ref_seed = ref_seed
        self.ref_min_area = ref_min_area
        self.query_classes = query_classes
        if ref_set_file is not None and mode == 'train':
            raise ValueError('ref_set_file fixes evaluation references; training samples '
                             'references at random (remove ref_set_file or use mode='
                             "'oracle'/'open')")
        self._ref_set_file = ref_set_file
        self.class_split = class_split
        if class_split is not None:
            kwargs['metainfo'] = split_metainfo(class_split, kwargs)
        self.epoch = 0
        super().__init__(*args, **kwargs)
        self._announce_switches()

    def _announce_switches(self) -> None:
        """Log the evaluation switches that change what is measured (a reference control,
        a subset of queried classes) and name them in the metainfo, so that a config that
        carries one is never run silently and the metric records it."""
        if self.mode == 'train':
            return
        self._metainfo['reference_control'] = self.ref_control or 'none'
        self._metainfo['query_mode'] = self.mode
        if self._fully_initialized:  # the labels that have references (open: all queried)
            self._metainfo['reference_labels'] = sorted(self.reference_set)
        print_log(describe_control(self.ref_control), logger='current',
                  level=30 if self.ref_control else 20)
        if self.ref_control not in (None, 'blank') and self._fully_initialized:
            print_log('[control] donors: ' + ', '.join(
                f'{self.metainfo["classes"][lb]} <- {self.metainfo["classes"][d]}'
                for lb, d in sorted(self.donors.items())), logger='current', level=30)
        if self.query_classes is not None and self.mode == 'open':
            print_log(f'[evaluation switch] query_classes: only {list(self.query_classes)} '
                      'are queried', logger='current', level=30)
            self._metainfo['query_classes'] = list(self.query_classes)
        if self.shot_index is not None:
            print_log(f'[evaluation switch] shot_index: each class is queried with reference '
                      f'{self.shot_index} of its draw alone', logger='current', level=30)
            self._metainfo['shot_index'] = self.shot_index

    # ------------------------------------------------------------------ loading
    def load_data_list(self) -> List[dict]:
        self._check_file(self.ann_file, 'annotation file')
        self._skipped: List[int] = []
        # Keep the COCO object the parent builds (it deletes it) to reuse it for references.
        kept = {}
        api = self.COCOAPI
        self.COCOAPI = lambda path: kept.setdefault('coco', api(path))
        try:
            data_list = super().load_data_list()
        finally:
            del self.COCOAPI
        coco = kept['coco']
        if not data_list:
            raise ValueError(f'{self.ann_file} has no images: an empty annotation file cannot '
                             'be trained or evaluated; regenerate or fix it.')
        self._check_classes(coco)
        self._warn_skipped()
        if self._ref_set_file is not None:
            self.reference_set = self._load_reference_set_file()
            self.ref_pool = self.reference_set
            self._separate_refs = True
        else:
            self.ref_pool = self._build_ref_pool(coco)
            if self.mode != 'train':
                self.reference_set = self._choose_reference_set()
        if self.shot_index is not None:
            self.reference_set = self._single_shots(self.reference_set)
        return data_list

    def _single_shots(self, refs: Dict[int, List[dict]]) -> Dict[int, List[dict]]:
        """{label: [its shot_index-th reference]} of a k-shot draw ``refs``."""
        short = [self.metainfo['classes'][lb] for lb, r in refs.items()
                 if len(r) <= self.shot_index]
        if short:
            raise ValueError(f'shot_index={self.shot_index}: classes {short} have fewer than '
                             f'{self.shot_index + 1} references in the draw')
        return {lb: r[self.shot_index:self.shot_index + 1] for lb, r in refs.items()}

    def _load_reference_set_file(self) -> Dict[int, List[dict]]:
        """k-shot references per label from a reference-set JSON (first ``shots``)."""
        prefix = self._rooted(self._ref_img_prefix) or self.data_prefix.get('img', '')
        return reference_set_entries(self._rooted(self._ref_set_file), self._draw_shots,
                                     prefix, self.metainfo['classes'])

    @staticmethod
    def _check_file(path: str, what: str) -> None:
        if path and '://' not in path and not osp.isfile(path):
            raise MissingResourceError(
                f'{what} not found: {path!r}. Check data_root / ann_file in the config, '
                'or create the dataset (toy world: python tools/misc/make_toy_world.py).')

    def _check_classes(self, coco: COCO) -> None:
        # CocoDataset maps labels through cat ids sorted by id, not through the order of
        # metainfo['classes'], and drops unknown names: both would silently mislabel.
        classes = list(self.metainfo['classes'])
        known = {c['name'] for c in coco.cats.values()}
        unknown = [c for c in classes if c not in known]
        if unknown:
            raise ValueError(f'classes {unknown} are not categories of {self.ann_file}')
        names = [coco.cats[i]['name'] for i in self.cat_ids]
        if names != classes:
            raise ValueError('metainfo classes must be listed in ascending category-id order '
                             f'of {self.ann_file}: expected {names}, got {classes}')

    def parse_data_info(self, raw_data_info: dict) -> dict:
        # Count what the parent skips silently (degenerate boxes, zero area), to report it.
        img = raw_data_info['raw_img_info']
        for ann in raw_data_info['raw_ann_info']:
            x, y, w, h = ann['bbox']
            iw = max(0, min(x + w, img['width']) - max(x, 0))
            ih = max(0, min(y + h, img['height']) - max(y, 0))
            if ann.get('category_id') in self.cat2label and (
                    iw * ih == 0 or ann.get('area', 1) <= 0 or w < 1 or h < 1):
                self._skipped.append(ann.get('id'))
        return super().parse_data_info(raw_data_info)

    def _warn_skipped(self) -> None:
        if self._skipped:
            print_log(f'{self.ann_file}: {len(self._skipped)} annotations with degenerate boxes '
                      f'(width or height < 1 px, or zero area) are ignored, e.g. ids '
                      f'{self._skipped[:5]}', logger='current', level=30)

    def _build_ref_pool(self, own_coco: COCO) -> Dict[int, ReferencePool]:
        """Eligible references per label (non-crowd, valid box, area >= min), serialized."""
        ann_file = self._rooted(self._ref_ann_file) or self.ann_file
        prefix = self._rooted(self._ref_img_prefix) or self.data_prefix.get('img', '')
        self._separate_refs = ann_file != self.ann_file
        self._check_file(ann_file, 'reference annotation file')
        coco = own_coco if ann_file == self.ann_file else COCO(ann_file)
        name2label = {n: i for i, n in enumerate(self.metainfo['classes'])}
        pool: Dict[int, List[dict]] = defaultdict(list)
        for ann in coco.dataset.get('annotations', []):
            cat = coco.cats.get(ann['category_id'])
            if cat is None or cat['name'] not in name2label or ann.get('iscrowd', 0):
                continue
            x, y, w, h = ann['bbox']
            if w < 1 or h < 1 or ann.get('area', w * h) < self.ref_min_area:
                continue
            img = coco.imgs[ann['image_id']]
            pool[name2label[cat['name']]].append(dict(
                img_path=osp.join(prefix, img['file_name']), img_id=ann['image_id'],
                bbox=reference_box(ann, img, ann_file).tolist(), label=name2label[cat['name']],
                key=f'{osp.basename(ann_file)}:{ann["id"]}',
                segmentation=ann.get('segmentation'), img_hw=(img['height'], img['width'])))
        missing = [c for i, c in enumerate(self.metainfo['classes']) if not pool.get(i)]
        if missing:
            msg = (f'classes without any eligible reference (non-crowd, area >= '
                   f'{self.ref_min_area:g}) in {ann_file}: {missing}')
            if self.mode != 'train':
                raise ValueError(msg + '. Add reference annotations for them, lower '
                                 'ref_min_area, or remove them from metainfo.classes.')
            print_log(msg + '; their ground truth is not used for training.',
                      logger='current', level=30)
        return {label: ReferencePool(refs) for label, refs in pool.items()}

    def _rooted(self, path: Optional[str]) -> Optional[str]:
        """``path`` joined to ``data_root`` like ``ann_file`` (absolute paths unchanged)."""
        if path and self.data_root and not osp.isabs(path) and '://' not in path:
            return osp.join(self.data_root, path)
        return path

    def _choose_reference_set(self) -> Dict[int, List[dict]]:
        """Fixed k-shot references per class (distinct images), chosen once from the seed."""
        rng = np.random.default_rng(self.ref_seed)
        refs = {}
        for label in sorted(self.ref_pool):
            cands = self.ref_pool[label]
            chosen, seen = [], set()
            for j in rng.permutation(len(cands)):
                if cands[j]['img_id'] not in seen:
                    chosen.append(cands[j])
                    seen.add(cands[j]['img_id'])
                if len(chosen) == self._draw_shots:
                    break
            if len(chosen) < self._draw_shots:
                print_log(f'class {self.metainfo["classes"][label]!r} has only {len(chosen)} '
                          f'reference images for {self._draw_shots}-shot evaluation',
                          logger='current', level=30)
            refs[label] = chosen
        return refs

    # ------------------------------------------------------------------ sampling
    def set_epoch(self, epoch: int) -> None:
        """Called by :class:`InContextEpochHook` so each epoch draws new references."""
        self.epoch = epoch

    def sample_references(self, idx: int, data_info: dict) -> List[dict]:
        """References for target ``idx`` (see the module docstring for each mode)."""
        present = sorted({int(i['bbox_label']) for i in data_info['instances']
                          if not i.get('ignore_flag', 0)})
        if self.mode != 'train':
            if self.mode == 'oracle':
                labels = [lb for lb in present if lb in self.reference_set]
            else:
                labels = self._query_labels()
            return [r for lb in labels for r in self.evaluation_references(lb)]
        rng = np.random.default_rng([self.ref_seed, self.epoch, idx])
        img_id = data_info['img_id']
        authors = self.class_sampling == 'authors'  # draw first, drop the unreferenced after
        pos = present if authors else [lb for lb in present if self._has_other_ref(lb, img_id)]
        if len(pos) > self.max_classes_per_image:
            pos = sorted(rng.choice(pos, self.max_classes_per_image, replace=False).tolist())
        if authors:
            pos = [lb for lb in pos if self._has_other_ref(lb, img_id)]
        labels = list(pos)
        if self.neg_classes_per_image > 0:
            absent = [lb for lb in self.ref_pool if lb not in present]
            k = min(self.neg_classes_per_image, len(absent))
            labels += sorted(rng.choice(absent, k, replace=False).tolist()) if k else []
        refs = []
        for lb in labels:
            cands = self.ref_pool[lb]
            # k is drawn only for k-shot episodes, so 1-shot draws stay those of the paper's
            k = int(rng.integers(1, self.train_shots + 1)) if self.train_shots > 1 else 1
            keys = set()
            for _ in range(100 * k):  # almost always succeeds at once; bounded for safety
                r = cands[int(rng.integers(len(cands)))]
                if (r['img_id'] != img_id or self._separate_refs) and r['key'] not in keys:
                    refs.append(r)
                    keys.add(r['key'])
                    if len(keys) == k:
                        break
        if self.ref_flip_prob > 0:  # drawn last: the other draws do not move
            refs = [dict(r, flip=True, key=f'{r["key"]}:flip')
                    if rng.random() < self.ref_flip_prob else r for r in refs]
        return refs

    def evaluation_references(self, label: int) -> List[dict]:
        """The k-shot references queried for class ``label``, after ``ref_control``."""
        if self.ref_control is None:
            return self.reference_set[label]
        if self.ref_control == 'blank':
            return [dict(r, key=f'{r["key"]}:blank', blank=True)
                    for r in self.reference_set[label]]
        return [dict(r, label=label) for r in self.reference_set[self.donors[label]]]

    @property
    def donors(self) -> Dict[int, int]:
        """label -> the label whose references it takes under a derangement control
        (:func:`~.reference_controls.control_donors` over the classes with references)."""
        if getattr(self, '_donors', None) is None:
            self._donors = control_donors(self.ref_control, list(self.reference_set),
                                          self.metainfo['classes'])
        return self._donors

    def _has_other_ref(self, label: int, img_id: int) -> bool:
        cands = self.ref_pool.get(label, [])
        if self._separate_refs:  # a separate reference set never holds the target
            return bool(cands)
        return any(c['img_id'] != img_id for c in cands)

    def _query_labels(self) -> List[int]:
        if self.query_classes is None:
            return sorted(self.reference_set)
        classes = list(self.metainfo['classes'])
        unknown = [c for c in self.query_classes if c not in classes]
        if unknown:
            raise ValueError(f'query_classes {unknown} are not dataset classes')
        return sorted(classes.index(c) for c in self.query_classes)

    def prepare_data(self, idx: int):
        data_info = self.get_data_info(idx)
        data_info['references'] = copy.deepcopy(self.sample_references(idx, data_info))
        data_info['query_mode'] = self.mode
        if self.mode == 'train' and not data_info['references']:
            return None  # no class of this image has a reference: BaseDataset draws another
        return self.pipeline(data_info)

