"""Named class lists and base/novel splits: the one place class names are listed.

Configs name a list (``InContextCocoDataset(class_split='coco-base')``) instead of
restating it; :func:`split_classes` resolves the name. The names come from their sources:
COCO and PASCAL VOC from mmdet's ``CocoDataset`` / ``VOCDataset`` ``METAINFO`` (category-id
order), the toy world from :mod:`.toy_class_names`, the splits from the papers.

Named lists (:data:`CLASS_SPLIT_NAMES`):
    ``coco`` (80), ``coco-base`` (60) / ``coco-novel`` (20): COCO-NOVEL (Kang et al.,
        "Few-shot Object Detection via Feature Reweighting"; paper §5.2, Table 3): NOVEL = the 20
        PASCAL VOC classes, BASE = the other 60.
    ``coco-20i-fold{0..3}-{train,test}``: COCO-20i (PANet / HSNet): fold ``f`` tests on
        classes ``f, f + 4, f + 8, ...`` (0-based, category-id order), trains on the 60 others.
    ``voc`` (20), ``pascal-5i-fold{0..3}-{train,test}``: PASCAL-5i: fold ``f`` tests on VOC
        classes ``5f .. 5f + 4``, trains on the 15 others.
    ``toy``, ``toy-base``, ``toy-novel``: the synthetic toy world (12 = 9 + 3).
    ``ann_file``: not a list: the dataset takes every category of its annotation file.

A model is trained on base-class annotations only and evaluated on all classes with AP
reported per split (:class:`InContextCocoMetric` ``class_splits``).
"""
import copy
import json
import os.path as osp
import re
from typing import Dict, List, Optional, Sequence

from ..utils.checkpoint import MissingResourceError
from .toy_class_names import toy_classes, toy_splits

COCO_NOVEL_CLASSES = [
    'airplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
    'dining table', 'dog', 'horse', 'motorcycle', 'person', 'potted plant', 'sheep', 'couch',
    'train', 'tv']
# the value of ``class_split`` that means "every category of the annotation file"
FROM_ANN_FILE = 'ann_file'
_FOLD_SPLIT = re.compile(r'(coco-20i|pascal-5i)-fold([0-3])-(train|test)')
NUM_FOLDS = 4  # PASCAL-5i and COCO-20i
CLASS_SPLIT_NAMES = ('coco', 'coco-base', 'coco-novel', 'voc', 'toy', 'toy-base',
                     'toy-novel') + tuple(
    f'{d}-fold{f}-{s}' for d in ('coco-20i', 'pascal-5i') for f in range(4)
    for s in ('train', 'test'))


def coco_classes() -> List[str]:
    """The 80 COCO 2017 class names in category-id order (mmdet's ``CocoDataset``)."""
    from mmdet.datasets import CocoDataset
    return list(CocoDataset.METAINFO['classes'])


def voc_classes() -> List[str]:
    """The 20 PASCAL VOC class names in mmdet's ``VOCDataset`` order."""
    from mmdet.datasets import VOCDataset
    return list(VOCDataset.METAINFO['classes'])


def split_classes(name: str) -> List[str]:
    """The class names of the named list ``name`` (see the module docstring), in order.

    Raises:
        ValueError: ``name`` is not one of :data:`CLASS_SPLIT_NAMES`.
    """
    if name == 'coco':
        return coco_classes()
    if name in ('coco-base', 'coco-novel'):
        names = coco_classes()
        splits = coco_novel_splits(dict(categories=[dict(id=i + 1, name=n)
                                                    for i, n in enumerate(names)]))
        return splits[name[len('coco-'):]]
    if name == 'voc':
        return voc_classes()
    if name in ('toy', 'toy-base', 'toy-novel'):
        return toy_classes() if name == 'toy' else toy_splits()[name[len('toy-'):]]
    m = _FOLD_SPLIT.fullmatch(name)
    if m is None:
        raise ValueError(f'unknown class split {name!r}; known: {", ".join(CLASS_SPLIT_NAMES)}'
                         f' (or {FROM_ANN_FILE!r}: every category of the annotation file)')
    dataset, fold, part = m.group(1), int(m.group(2)), m.group(3)
    names = coco_classes() if dataset == 'coco-20i' else voc_classes()
    test = fold_classes(names, fold, interleaved=dataset == 'coco-20i')
    return test if part == 'test' else [n for n in names if n not in test]


def check_fold(fold: int) -> int:
    """``fold`` if it is one of 0..3, else a ValueError saying so."""
    if not isinstance(fold, int) or isinstance(fold, bool) or not 0 <= fold < NUM_FOLDS:
        raise ValueError(f'unknown fold {fold!r}: PASCAL-5i and COCO-20i have folds 0..'
                         f'{NUM_FOLDS - 1} (set e.g. --cfg-options '
                         'test_dataloader.dataset.fold=1)')
    return fold


def fold_classes(names: Sequence[str], fold: int, interleaved: bool) -> List[str]:
    """The test classes of ``fold`` over ``names`` (4 folds of ``len(names) / 4``).

    Args:
        names: every class of the data set, in its id order.
        fold: 0..3.
        interleaved: COCO-20i, fold i = ``{i + 4k}`` (0-based); else PASCAL-5i, fold i =
            the i-th block of consecutive classes (``5i + 1 .. 5i + 5`` of VOC's 1-based ids).
    """
    check_fold(fold)
    if len(names) % NUM_FOLDS:
        raise ValueError(f'{len(names)} classes cannot form {NUM_FOLDS} equal folds')
    if interleaved:
        return list(names[fold::NUM_FOLDS])
    n = len(names) // NUM_FOLDS
    return list(names[fold * n:(fold + 1) * n])


def named_class_splits(name: str) -> Dict[str, List[str]]:
    """``{'base': [...], 'novel': [...]}`` of a protocol: ``'coco-novel'`` or ``'toy'``."""
    if name == 'coco-novel':
        return dict(base=split_classes('coco-base'), novel=split_classes('coco-novel'))
    if name == 'toy':
        return dict(base=split_classes('toy-base'), novel=split_classes('toy-novel'))
    raise ValueError(f"no base/novel splits named {name!r}; known: 'coco-novel', 'toy'")


def ann_file_classes(path: str) -> List[str]:
    """Every category name of a COCO-format JSON, in category-id order."""
    if not osp.isfile(path):
        raise MissingResourceError(f'annotation file not found: {path!r} (class_split='
                                   f'{FROM_ANN_FILE!r} reads its categories)')
    with open(path) as f:
        cats = json.load(f).get('categories') or []
    return [c['name'] for c in sorted(cats, key=lambda c: c['id'])]


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


def split_metainfo(class_split: str, dataset_kwargs: dict) -> dict:
    """A dataset's ``metainfo`` with the classes of ``class_split``.

    Args:
        class_split: a name of :func:`split_classes`, or :data:`FROM_ANN_FILE` (every
            category of the dataset's ``ann_file``, joined to its ``data_root``).
        dataset_kwargs: the dataset's arguments (``ann_file``, ``data_root``, ``metainfo``).

    Raises:
        ValueError: when ``metainfo['classes']`` is also given and names other classes.
    """
    if class_split == FROM_ANN_FILE:
        ann_file = dataset_kwargs.get('ann_file', '')
        root = dataset_kwargs.get('data_root') or ''
        if root and ann_file and not osp.isabs(ann_file) and '://' not in ann_file:
            ann_file = osp.join(root, ann_file)
        classes = ann_file_classes(ann_file)
    else:
        classes = split_classes(class_split)
    metainfo = dict(dataset_kwargs.get('metainfo') or {})
    given = metainfo.get('classes')
    if given is not None and list(given) != classes:
        raise ValueError(f'class_split={class_split!r} and metainfo.classes name different '
                         'classes: give one of them (set class_split=None to list the '
                         'classes in metainfo)')
    metainfo['classes'] = classes  # a list, as a config's metainfo gives it
    return metainfo
