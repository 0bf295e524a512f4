"""PASCAL-5i from the VOC 2012 folders (Shaban et al., "One-Shot Learning for Semantic
Segmentation", BMVC 2017; the split HSNet evaluates).

Expected tree (``data_root`` = ``data/VOCdevkit/VOC2012/``)::

    JPEGImages/2007_000033.jpg ...
    SegmentationClassAug/2007_000033.png ...   one uint8 class index per pixel: 0
                                               background, 1..20 the VOC classes in
                                               mmdet's VOCDataset order, 255 boundary
    ImageSets/Segmentation/val.txt             the test list (1,449 images)
    ImageSets/SegmentationAug/train_aug.txt    the training list (VOC + SBD)

A list holds one image name per line (``2007_000033``), optionally with a path and
extension (``JPEGImages/2007_000033.jpg SegmentationClassAug/2007_000033.png`` keeps the
first name's stem). Lines of HSNet's per-fold lists (``2007_000033__01``: image, 1-based
class) are read too; their class restricts the pairs of that image. The classes of an
image are the fold's classes found in its PNG. Fold ``f`` tests on classes
``5f + 1 .. 5f + 5`` and trains on the 15 others; 255 pixels are ignored everywhere.
"""
import os.path as osp
import re
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image

from mmdet.registry import DATASETS
from .class_splits import check_fold, fold_classes, split_classes
from .fss_episodes import FewShotEpisodeDataset

IGNORE_VALUE = 255
_HSNET_LINE = re.compile(r'(.+)__(\d+)')
_HINT = ('PASCAL-5i expects data_root/JPEGImages, data_root/SegmentationClassAug and the '
         'split list (see docs/samic.md, "Few-shot segmentation data"); the toy world '
         'exports this layout with tools/misc/export_toy_fss.py.')


def read_label_png(path: str) -> np.ndarray:
    """(H0, W0) uint8 class indices of a VOC label PNG (palette or grey)."""
    with Image.open(path) as im:
        if im.mode not in ('P', 'L'):
            raise ValueError(f'{path!r} is a {im.mode} image; a label PNG holds one class '
                             'index per pixel (palette or grey, like SegmentationClassAug)')
        return np.asarray(im)


def read_split_list(path: str) -> List[Tuple[str, int]]:
    """(image stem, 1-based class or 0 for any) per non-empty line of a split list."""
    out = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            stem = osp.splitext(osp.basename(line.split()[0]))[0]
            m = _HSNET_LINE.fullmatch(stem)
            out.append((m.group(1), int(m.group(2))) if m else (stem, 0))
    if not out:
        raise ValueError(f'split list {path!r} is empty')
    return out


@DATASETS.register_module()
class PascalFiveIDataset(FewShotEpisodeDataset):
    """PASCAL-5i episodes read from the VOC folders (module docstring: the tree).

    Args:
        fold: 0..3.
        ann_file: the split list (relative to ``data_root``), e.g.
            ``'ImageSets/Segmentation/val.txt'``.
        data_prefix: ``dict(img='JPEGImages/', seg='SegmentationClassAug/')``.
        class_list: named class list of the PNG values 1..N (``'voc'``; ``'toy'`` for the
            exported toy world), see :func:`~mmsamantics.datasets.class_splits.split_classes`.
        **kwargs: :class:`FewShotEpisodeDataset` arguments (``mode``, ``shots``,
            ``num_episodes``, ``seed``...).
    """

    def __init__(self, *args, fold: int = 0, class_list: str = 'voc',
                 data_prefix: dict = dict(img='JPEGImages/', seg='SegmentationClassAug/'),
                 **kwargs) -> None:
        self.fold = check_fold(fold)
        self.all_classes = split_classes(class_list)
        super().__init__(*args, data_prefix=data_prefix, **kwargs)

    def load_images(self) -> Tuple[List[str], List[dict], Dict[int, List[int]]]:
        test = fold_classes(self.all_classes, self.fold, interleaved=False)
        classes = test if self.mode == 'test' else [
            c for c in self.all_classes if c not in test]
        value = {self.all_classes.index(c) + 1: lb for lb, c in enumerate(classes)}
        self._require(self.ann_file, 'PASCAL-5i split list', _HINT)
        img_dir, seg_dir = self.data_prefix['img'], self.data_prefix['seg']
        records: List[dict] = []
        index: Dict[str, int] = {}
        per_class: Dict[int, List[int]] = {lb: [] for lb in range(len(classes))}
        for stem, cls in read_split_list(self.ann_file):
            img, png = osp.join(img_dir, stem + '.jpg'), osp.join(seg_dir, stem + '.png')
            self._require(png, f'label PNG of {stem!r} (listed in {self.ann_file})', _HINT)
            if not osp.isfile(img):
                raise FileNotFoundError(f'mask {png!r} has no image: {img!r} is missing. '
                                        f'{_HINT}')
            present = set(np.unique(read_label_png(png)).tolist())
            labels = [value[v] for v in sorted(present) if v in value and cls in (0, v)]
            if not labels:
                continue
            if stem not in index:  # HSNet lists: one line per (image, class)
                index[stem] = len(records)
                records.append(dict(img_path=img, seg_path=png, key=stem))
            for lb in labels:
                if index[stem] not in per_class[lb]:
                    per_class[lb].append(index[stem])
        return classes, records, {lb: sorted(ix) for lb, ix in per_class.items()}

    def load_mask(self, record: dict, label: int) -> Tuple[np.ndarray, np.ndarray]:
        png = read_label_png(record['seg_path'])
        value = self.all_classes.index(self.metainfo['classes'][label]) + 1
        return png == value, png == IGNORE_VALUE
