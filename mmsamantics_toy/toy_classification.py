"""A small deterministic ImageNet-format folder dataset of toy-world shapes (for probes).

Each image shows ONE shape of the toy world (``"<colour> <shape>"``, 12 classes) at a random
size, position and rotation on a noisy gradient background, so the class is a property of
the whole image as in ImageNet. Layout (what mmpretrain's ``CustomDataset`` reads)::

    out_dir/
      train/<colour>_<shape>/000000.png ...
      val/<colour>_<shape>/000000.png ...
      toy_classification.json     the generator's arguments (to detect stale copies)

Everything derives from ``seed``.
"""
import json
import os
import os.path as osp
from typing import List, Optional, Sequence

import cv2
import numpy as np

from .toy_world import COLOURS, SHAPES, noisy_background, shape_polygon

TOY_CLASSIFICATION_VERSION = 1
_META = 'toy_classification.json'


def toy_classification_classes() -> List[str]:
    """Folder (= class) names in the order ``CustomDataset`` assigns labels (sorted)."""
    return sorted(f'{c}_{s}' for c in COLOURS for s in SHAPES)


def _render(rng: np.random.Generator, cls: str, size: int) -> np.ndarray:
    colour, shape = cls.split('_')
    img = noisy_background(rng, size, size)
    r = rng.uniform(0.2, 0.42) * size
    cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
    poly = shape_polygon(shape, cx, cy, r, rng.uniform(0, 2 * np.pi))
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
    rgb = np.clip(np.array(COLOURS[colour]) + rng.normal(0, 12, size=3), 0, 255)
    shade = 1 + rng.normal(0, 0.04, size=(size, size, 1))
    img = np.where(mask[..., None].astype(bool), rgb[None, None] * shade, img)
    return np.clip(img, 0, 255).astype(np.uint8)


def _params(seed: int, num_train: int, num_val: int, img_size: int,
            classes: Sequence[str]) -> dict:
    return dict(version=TOY_CLASSIFICATION_VERSION, seed=seed, num_train=num_train,
                num_val=num_val, img_size=img_size, classes=list(classes))


def is_current_toy_classification(out_dir: str, **kwargs) -> bool:
    """True when ``out_dir`` holds the dataset :func:`make_toy_classification` would write
    with these arguments (same defaults)."""
    path = osp.join(out_dir, _META)
    if not osp.isfile(path):
        return False
    with open(path) as f:
        stored = json.load(f)
    args = dict(seed=0, num_train=16, num_val=8, img_size=64, classes=None)
    args.update(kwargs)
    args['classes'] = args['classes'] or toy_classification_classes()
    return stored == _params(**args)


def make_toy_classification(out_dir: str,
                            seed: int = 0,
                            num_train: int = 16,
                            num_val: int = 8,
                            img_size: int = 64,
                            classes: Optional[Sequence[str]] = None) -> dict:
    """Write the toy classification dataset to ``out_dir``.

    Args:
        out_dir: output folder (created; existing class folders are overwritten).
        seed: everything derives from it.
        num_train: training images per class.
        num_val: validation images per class.
        img_size: side of the square images (px).
        classes: subset of :func:`toy_classification_classes` (default: all 12).

    Returns:
        The stored parameters (also written to ``out_dir/toy_classification.json``).
    """
    known = toy_classification_classes()
    classes = list(classes) if classes is not None else known
    bad = [c for c in classes if c not in known]
    if bad:
        raise ValueError(f'unknown toy classes {bad}; known: {known}')
    if num_train < 1 or num_val < 1 or img_size < 16:
        raise ValueError('need num_train >= 1, num_val >= 1 and img_size >= 16, got '
                         f'{num_train}, {num_val}, {img_size}')
    for split_idx, (split, n) in enumerate((('train', num_train), ('val', num_val))):
        for c_idx, cls in enumerate(classes):
            # one stream per (split, class): adding a class leaves the others unchanged
            rng = np.random.default_rng([seed, split_idx, known.index(cls)])
            folder = osp.join(out_dir, split, cls)
            os.makedirs(folder, exist_ok=True)
            for i in range(n):
                img = _render(rng, cls, img_size)
                cv2.imwrite(osp.join(folder, f'{i:06d}.png'), img[..., ::-1])  # RGB -> BGR
    params = _params(seed, num_train, num_val, img_size, classes)
    with open(osp.join(out_dir, _META), 'w') as f:
        json.dump(params, f, indent=1)
    return params
