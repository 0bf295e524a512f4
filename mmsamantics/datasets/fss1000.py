"""FSS-1000 from its class folders (Li et al., "FSS-1000: A 1000-Class Dataset for Few-Shot
Segmentation", CVPR 2020).

Expected tree (``data_root`` = ``data/FSS-1000/``)::

    ab_wheel/1.jpg  ab_wheel/1.png  ...  ab_wheel/10.jpg  ab_wheel/10.png
    ...                                    one folder per class, jpg/png pairs
    splits/test.txt                        the class folders of the split, one per line
                                           (240 test classes; train.txt: 520, val.txt: 240)

A PNG is the object mask of the jpg of the same stem (foreground: value > 127 in its
first channel). There are no folds: the class list file is the split. Evaluation is one
episode per test image (each image once as the query), its k supports drawn from the
other images of its class with ``seed``.
"""
import glob
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image

from mmdet.registry import DATASETS
from .fss_episodes import FewShotEpisodeDataset

_HINT = ('FSS-1000 expects one folder per class under data_root with jpg/png pairs and a '
         'class list file (see docs/samic.md, "Few-shot segmentation data"); the toy world '
         'exports this layout with tools/misc/export_toy_fss.py.')


def read_binary_png(path: str) -> np.ndarray:
    """(H0, W0) bool foreground of an FSS-1000 mask PNG (> 127 in its first channel)."""
    with Image.open(path) as im:
        a = np.asarray(im.convert('L') if im.mode == 'P' else im)
    return (a[..., 0] if a.ndim == 3 else a) > 127


@DATASETS.register_module()
class FSS1000Dataset(FewShotEpisodeDataset):
    """FSS-1000 episodes read from the class folders (module docstring: the tree).

    Args:
        ann_file: the class list file (relative to ``data_root``), e.g.
            ``'splits/test.txt'``; its classes are the dataset's classes in file order.
        **kwargs: :class:`FewShotEpisodeDataset` arguments; the defaults here are the
            FSS-1000 protocol (``episode_order='per_query'``, ``num_episodes=None``).
    """

    def __init__(self, *args, episode_order: str = 'per_query', num_episodes=None,
                 **kwargs) -> None:
        super().__init__(*args, episode_order=episode_order, num_episodes=num_episodes,
                         **kwargs)

    def load_images(self) -> Tuple[List[str], List[dict], Dict[int, List[int]]]:
        self._require(self.ann_file, 'FSS-1000 class list', _HINT)
        with open(self.ann_file) as f:
            classes = [ln.strip() for ln in f if ln.strip()]
        if not classes:
            raise ValueError(f'class list {self.ann_file!r} is empty')
        root = self.data_root or osp.dirname(self.ann_file)
        records: List[dict] = []
        per_class: Dict[int, List[int]] = {}
        for lb, name in enumerate(classes):
            folder = osp.join(root, name)
            self._require(folder, f'class folder of {name!r} (listed in {self.ann_file})',
                          _HINT)
            pngs = sorted(glob.glob(osp.join(folder, '*.png')),
                          key=lambda p: (len(osp.basename(p)), osp.basename(p)))
            if not pngs:
                raise ValueError(f'class folder {folder!r} has no jpg/png pair (expected '
                                 f'e.g. 1.jpg + 1.png). {_HINT}')
            per_class[lb] = []
            for png in pngs:
                img = png[:-len('.png')] + '.jpg'
                if not osp.isfile(img):
                    raise FileNotFoundError(f'mask {png!r} has no image: {img!r} is '
                                            f'missing. {_HINT}')
                per_class[lb].append(len(records))
                records.append(dict(img_path=img, seg_path=png,
                                    key=f'{name}/{osp.basename(img)}'))
        return classes, records, per_class

    def load_mask(self, record: dict, label: int) -> Tuple[np.ndarray, np.ndarray]:
        fg = read_binary_png(record['seg_path'])
        return fg, np.zeros_like(fg)
