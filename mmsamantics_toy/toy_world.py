"""Synthetic "toy world": a deterministic COCO-format in-context dataset.

So that tests, the demo and the benchmarks need no download, they run on images of
coloured shapes. A class is ``"<colour> <shape>"``; a few
colour/shape combinations are held out as NOVEL classes (COCO-NOVEL style) while their
colour and their shape both appear in BASE classes, so a model has to compose them. The
class names and splits are listed once, in :mod:`mmsamantics.datasets.toy_class_names`
(re-exported here); this module draws the images and writes the annotations.

Layout written by :func:`make_toy_world`::

    out_dir/
      train/000000.png ...        val/000000.png ...
      annotations/instances_train.json   instances_val.json
      annotations/splits.json            {"base": [...names], "novel": [...names]}
      annotations/toy_world.json         {"params": {...}}: how the world was generated

A folder holds one world: :func:`make_toy_world` reuses it when the recorded parameters
(seed, sizes, ranges) and the generator version equal the requested ones, rewrites it when
only the version differs or files are missing, and refuses to replace a world of other
parameters unless told to overwrite it, so a small world written for one experiment never
silently takes the place of another's (use one folder per parameter set).

Each image is H x W (random in ``img_size_range``) with 2-6 instances of 1-3 classes;
later shapes may occlude earlier ones a little, and the stored polygons/boxes/areas are
those of the *visible* part, as in COCO.
"""
import glob
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmsamantics.datasets.toy_class_names import (COLOURS, NOVEL, SHAPES, toy_classes,
                                                  toy_splits)

__all__ = ['COLOURS', 'NOVEL', 'SHAPES', 'TOY_WORLD_VERSION', 'ToyWorldMismatchError',
           'is_current_toy_world', 'make_toy_world', 'noisy_background',
           'read_toy_world_params', 'render_image', 'shape_polygon', 'suggest_toy_world_dir',
           'toy_classes', 'toy_splits', 'toy_world_params']

# Bumped whenever the generator changes, so stale copies on disk are regenerated.
TOY_WORLD_VERSION = 2
METADATA_FILE = 'toy_world.json'  # in annotations/: the generation parameters


def shape_polygon(shape: str, cx: float, cy: float, r: float,
                  angle: float) -> np.ndarray:
    """Vertices (N, 2) of a shape of circumradius ``r`` centred at (cx, cy)."""
    if shape == 'circle':
        t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        radii = np.full_like(t, r)
    elif shape == 'square':
        t = np.arange(4) * np.pi / 2 + np.pi / 4
        radii = np.full_like(t, r)
    elif shape == 'triangle':
        t = np.arange(3) * 2 * np.pi / 3 - np.pi / 2
        radii = np.full_like(t, r)
    elif shape == 'star':
        t = np.arange(10) * np.pi / 5 - np.pi / 2
        radii = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
    else:
        raise ValueError(f'unknown toy shape {shape!r}; known: {SHAPES}')
    t = t + angle
    return np.stack([cx + radii * np.cos(t), cy + radii * np.sin(t)], axis=1)


def noisy_background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A low-saturation gradient with noise, so shapes are never on a flat colour."""
    c0 = rng.uniform(90, 170, size=3)
    c1 = c0 + rng.uniform(-40, 40, size=3)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(d) * xx / w + np.sin(d) * yy / h)
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-6)
    img = c0[None, None] * (1 - ramp[..., None]) + c1[None, None] * ramp[..., None]
    img += rng.normal(0, 6, size=(h, w, 3))
    return img


def _mask_to_polygons(mask: np.ndarray) -> List[List[float]]:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for c in contours:
        if len(c) >= 3:
            polys.append(c.reshape(-1).astype(float).tolist())
    return polys


def render_image(rng: np.random.Generator, h: int, w: int,
                 num_instances: int, size_range: Tuple[int, int],
                 num_classes: Optional[int] = None) -> Tuple[np.ndarray, List[dict]]:
    """Render one image and the visible annotation of each instance.

    ``num_classes`` classes are drawn first and every instance takes one of them, so, as in
    COCO, an image holds a few classes with several instances each (default: any class).

    Returns:
        (img, anns): ``img`` is an (H, W, 3) uint8 RGB array; each ann has ``label``
        (index into :func:`toy_classes`), ``mask`` (H, W) bool of the visible part.
    """
    classes = toy_classes()
    img = noisy_background(rng, h, w)
    full_masks: List[np.ndarray] = []
    labels: List[int] = []
    pool = (rng.choice(len(classes), num_classes, replace=False) if num_classes
            else np.arange(len(classes)))
    tries = 0
    while len(full_masks) < num_instances and tries < num_instances * 20:
        tries += 1
        label = int(pool[rng.integers(len(pool))])
        colour, shape = classes[label].split(' ')
        r = rng.uniform(*size_range) / 2
        cx, cy = rng.uniform(r, w - r), rng.uniform(r, h - r)
        poly = shape_polygon(shape, cx, cy, r, rng.uniform(0, 2 * np.pi))
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
        mask = mask.astype(bool)
        # Limit occlusion: each earlier instance must keep >= 70% of its area visible.
        ok = all((m & ~mask).sum() >= 0.7 * m.sum() for m in full_masks)
        if not ok or mask.sum() < 64:
            continue
        rgb = np.clip(np.array(COLOURS[colour]) + rng.normal(0, 12, size=3), 0, 255)
        shade = 1 + rng.normal(0, 0.04, size=(h, w, 1))  # texture inside the shape
        img = np.where(mask[..., None], rgb[None, None] * shade, img)
        full_masks.append(mask)
        labels.append(label)
    anns = []
    for i, (m, label) in enumerate(zip(full_masks, labels)):
        visible = m.copy()
        for later in full_masks[i + 1:]:
            visible &= ~later
        anns.append(dict(label=label, mask=visible))
    return np.clip(img, 0, 255).astype(np.uint8), anns


def _write_split(out_dir: str, split: str, num_images: int, seed: int,
                 img_size_range: Tuple[int, int],
                 instances_range: Tuple[int, int],
                 size_range: Tuple[int, int],
                 classes_range: Tuple[int, int]) -> str:
    rng = np.random.default_rng([seed, 0 if split == 'train' else 1])
    img_dir = osp.join(out_dir, split)
    os.makedirs(img_dir, exist_ok=True)
    classes = toy_classes()
    splits = toy_splits()
    images, annotations = [], []
    ann_id = 1
    for i in range(num_images):
        h, w = (int(v) for v in rng.integers(img_size_range[0], img_size_range[1] + 1, size=2))
        n = int(rng.integers(instances_range[0], instances_range[1] + 1))
        k = int(rng.integers(classes_range[0], classes_range[1] + 1))
        img, anns = render_image(rng, h, w, n, size_range, num_classes=k)
        file_name = f'{i:06d}.png'
        cv2.imwrite(osp.join(img_dir, file_name), img[..., ::-1])
        img_id = i + 1
        images.append(dict(id=img_id, file_name=file_name, height=h, width=w))
        for a in anns:
            m = a['mask']
            polys = _mask_to_polygons(m)
            if not polys:
                continue
            ys, xs = np.nonzero(m)
            x0, y0 = float(xs.min()), float(ys.min())
            annotations.append(dict(
                id=ann_id, image_id=img_id, category_id=a['label'] + 1,
                segmentation=polys, area=float(m.sum()),
                bbox=[x0, y0, float(xs.max()) + 1 - x0, float(ys.max()) + 1 - y0],
                iscrowd=0))
            ann_id += 1
    categories = [
        dict(id=k + 1, name=name, supercategory=name.split(' ')[1],
             split='novel' if name in splits['novel'] else 'base')
        for k, name in enumerate(classes)
    ]
    # files of a larger world previously written here (overwrite=True) would linger
    for stale in glob.glob(osp.join(img_dir, '[0-9]' * 6 + '.png')):
        if int(osp.basename(stale)[:6]) >= num_images:
            os.remove(stale)
    coco = dict(info=dict(description=f'mmsamantics toy world ({split}, seed {seed})',
                          version=TOY_WORLD_VERSION, seed=seed),
                images=images, annotations=annotations, categories=categories)
    ann_path = osp.join(out_dir, 'annotations', f'instances_{split}.json')
    with open(ann_path, 'w') as f:
        json.dump(coco, f)
    return ann_path


class ToyWorldMismatchError(FileExistsError):
    """The folder already holds a toy world of other parameters (or unrelated files)."""


def toy_world_params(seed: int = 0,
                     num_train: int = 400,
                     num_val: int = 100,
                     img_size_range: Tuple[int, int] = (224, 320),
                     instances_range: Tuple[int, int] = (2, 6),
                     size_range: Tuple[int, int] = (36, 96),
                     classes_range: Tuple[int, int] = (1, 3),
                     splits: Optional[Sequence[str]] = None) -> dict:
    """The generation parameters of a toy world, as recorded in ``toy_world.json``.

    Takes the arguments of :func:`make_toy_world` (same defaults) and returns them in JSON
    form, plus the generator ``version``.
    """
    return dict(version=TOY_WORLD_VERSION, seed=int(seed), num_train=int(num_train),
                num_val=int(num_val), img_size_range=[int(v) for v in img_size_range],
                instances_range=[int(v) for v in instances_range],
                size_range=[int(v) for v in size_range],
                classes_range=[int(v) for v in classes_range],
                splits=sorted(splits or ('train', 'val')))


def read_toy_world_params(out_dir: str) -> Optional[dict]:
    """Recorded generation parameters of the world in ``out_dir`` (None: none recorded)."""
    try:
        with open(osp.join(out_dir, 'annotations', METADATA_FILE)) as f:
            return json.load(f)['params']
    except (OSError, ValueError, KeyError, TypeError):
        return None


def suggest_toy_world_dir(out_dir: str, params: dict) -> str:
    """A sibling folder named after ``params``' sizes, for a world that must not replace
    the one in ``out_dir`` (e.g. ``data/toy_world_120x24``)."""
    name = f'{osp.normpath(out_dir)}_{params["num_train"]}x{params["num_val"]}'
    return name + (f'_seed{params["seed"]}' if params['seed'] else '')


def _differences(found: dict, wanted: dict) -> str:
    keys = sorted(set(found) | set(wanted))
    return ', '.join(f'{k} {found.get(k)} (wanted {wanted.get(k)})' for k in keys
                     if found.get(k) != wanted.get(k))


def _world_complete(out_dir: str, params: dict) -> bool:
    """Every annotation file of ``params`` and every image it lists is on disk."""
    if not osp.isfile(osp.join(out_dir, 'annotations', 'splits.json')):
        return False
    for split in params['splits']:
        try:
            with open(osp.join(out_dir, 'annotations', f'instances_{split}.json')) as f:
                coco = json.load(f)
        except (OSError, ValueError):
            return False
        if len(coco.get('images', [])) != params[f'num_{split}'] or not all(
                osp.isfile(osp.join(out_dir, split, im['file_name'])) for im in coco['images']):
            return False
    return True


def _world_state(out_dir: str, params: dict) -> Tuple[str, Optional[dict]]:
    """``(state, recorded params)`` of ``out_dir`` for a world of ``params``.

    States: ``'current'`` (same parameters, complete), ``'rewrite'`` (nothing there, or an
    earlier generator version / an interrupted write of the same parameters: safe to write),
    ``'other'`` (another parameter set), ``'unknown'`` (toy-world files without recorded
    parameters: an older mmsamantics, or another data set).
    """
    found = read_toy_world_params(out_dir)
    if found is None:
        toy_files = [osp.join(out_dir, 'annotations', n) for n in
                     ('instances_train.json', 'instances_val.json', 'splits.json')]
        toy_files += glob.glob(osp.join(out_dir, 'train', '*')) + \
            glob.glob(osp.join(out_dir, 'val', '*'))
        return ('unknown' if any(osp.exists(f) for f in toy_files) else 'rewrite'), None
    same = {k: v for k, v in found.items() if k != 'version'} == \
        {k: v for k, v in params.items() if k != 'version'}
    if not same:
        return 'other', found
    if found.get('version') == params['version'] and _world_complete(out_dir, params):
        return 'current', found
    return 'rewrite', found


def is_current_toy_world(out_dir: str, **params) -> bool:
    """Whether ``out_dir`` holds a complete toy world of exactly these parameters.

    Args:
        out_dir: the world's folder.
        **params: the arguments of :func:`make_toy_world` (defaults: its defaults).
    """
    return _world_state(out_dir, toy_world_params(**params))[0] == 'current'


def _paths(out_dir: str, splits: Sequence[str]) -> Dict[str, str]:
    out = {s: osp.join(out_dir, 'annotations', f'instances_{s}.json') for s in splits}
    out['splits'] = osp.join(out_dir, 'annotations', 'splits.json')
    out['params'] = osp.join(out_dir, 'annotations', METADATA_FILE)
    return out


def make_toy_world(out_dir: str,
                   seed: int = 0,
                   num_train: int = 400,
                   num_val: int = 100,
                   img_size_range: Tuple[int, int] = (224, 320),
                   instances_range: Tuple[int, int] = (2, 6),
                   size_range: Tuple[int, int] = (36, 96),
                   classes_range: Tuple[int, int] = (1, 3),
                   splits: Optional[Sequence[str]] = None,
                   overwrite: bool = False) -> Dict[str, str]:
    """Write the toy world to ``out_dir`` (deterministic given the parameters).

    A complete world of the same parameters already in ``out_dir`` is reused as it is
    (nothing written). A world of other parameters, or toy-world files whose parameters
    were not recorded, raise :class:`ToyWorldMismatchError` naming both parameter sets,
    unless ``overwrite``.

    Args:
        out_dir: destination folder (created).
        seed: everything (sizes, classes, positions, colours) derives from it.
        num_train / num_val: number of images per split.
        img_size_range: inclusive range of image height and width in pixels.
        instances_range: inclusive range of instances drawn per image.
        size_range: range of the shapes' circumscribed diameter in pixels.
        classes_range: inclusive range of distinct classes drawn per image (COCO averages
            2.9 categories and 7.3 instances per image).
        splits: which of ('train', 'val') to write; default both.
        overwrite: replace a world of other parameters in ``out_dir``.

    Returns:
        dict split -> annotation file path, plus ``'splits'`` -> splits.json path and
        ``'params'`` -> the recorded parameters (toy_world.json).
    """
    if num_train < 0 or num_val < 0:
        raise ValueError('num_train and num_val must be >= 0')
    params = toy_world_params(seed, num_train, num_val, img_size_range, instances_range,
                              size_range, classes_range, splits)
    state, found = _world_state(out_dir, params)
    if state == 'current':
        return _paths(out_dir, params['splits'])
    if state in ('other', 'unknown') and not overwrite:
        what = (f'a toy world made with other parameters: {_differences(found, params)}.\n'
                f'  recorded: {json.dumps(found)}\n  wanted:   {json.dumps(params)}'
                if state == 'other' else
                'toy-world files with no recorded parameters (written by an older '
                f'mmsamantics, or another data set); wanted: {json.dumps(params)}')
        raise ToyWorldMismatchError(
            f'{out_dir} already holds {what}\nWrite this world to its own folder (e.g. '
            f'{suggest_toy_world_dir(out_dir, params)}), or replace the one in {out_dir} '
            '(overwrite=True; --force in tools/misc/make_toy_world.py and tools/demo.py), '
            'which changes the results of everything that used it.')
    meta_path = osp.join(out_dir, 'annotations', METADATA_FILE)
    os.makedirs(osp.dirname(meta_path), exist_ok=True)
    if osp.exists(meta_path):  # a write interrupted below must not look current
        os.remove(meta_path)
    sizes = dict(train=num_train, val=num_val)
    for split in params['splits']:
        _write_split(out_dir, split, sizes[split], seed, img_size_range,
                     instances_range, size_range, classes_range)
    out = _paths(out_dir, params['splits'])
    with open(out['splits'], 'w') as f:
        json.dump(toy_splits(), f, indent=1)
    with open(meta_path, 'w') as f:  # last: the world is complete
        json.dump(dict(description='mmsamantics toy world', params=params), f, indent=1)
    return out
