"""COCO-20i from the COCO 2014 instance annotations (Nguyen and Todorovic, "Feature Weighting
and Boosting for Few-Shot Segmentation", ICCV 2019; the split HSNet evaluates).

Expected tree (``data_root`` = ``data/coco/``)::

    annotations/instances_train2014.json   annotations/instances_val2014.json
    train2014/COCO_train2014_000000000009.jpg ...   val2014/COCO_val2014_000000000042.jpg ...

Fold ``i`` tests on the classes ``{i + 4k}``, k = 0..19 (0-based over the 80 categories in
id order) and trains on the 60 others. Episodes are drawn from the images with a non-crowd
instance of the class; the class mask is the union of ALL its instances in the image (crowd
regions included); no pixel is ignored.
"""
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Tuple

import numpy as np
from pycocotools.coco import COCO

from mmdet.registry import DATASETS
from .class_splits import check_fold, fold_classes
from .fss_episodes import FewShotEpisodeDataset

_HINT = ('COCO-20i expects data_root/annotations/instances_{train,val}2014.json and the '
         'image folders train2014/, val2014/ (see docs/samic.md, "Few-shot segmentation '
         'data"); the toy world exports this layout with tools/misc/export_toy_fss.py.')


@DATASETS.register_module()
class CocoTwentyIDataset(FewShotEpisodeDataset):
    """COCO-20i episodes read from a COCO 2014 instances JSON (module docstring).

    Args:
        fold: 0..3.
        ann_file: the instances JSON (relative to ``data_root``).
        data_prefix: ``dict(img='val2014/')``: the folder of the JSON's ``file_name``.
        **kwargs: :class:`FewShotEpisodeDataset` arguments.
    """

    def __init__(self, *args, fold: int = 0, **kwargs) -> None:
        self.fold = check_fold(fold)
        super().__init__(*args, **kwargs)

    def load_images(self) -> Tuple[List[str], List[dict], Dict[int, List[int]]]:
        self._require(self.ann_file, 'COCO-20i annotation file', _HINT)
        coco = COCO(self.ann_file)
        cats = sorted(coco.cats.values(), key=lambda c: c['id'])
        names = [c['name'] for c in cats]
        test = fold_classes(names, self.fold, interleaved=True)
        classes = test if self.mode == 'test' else [n for n in names if n not in test]
        cat2label = {c['id']: classes.index(c['name']) for c in cats if c['name'] in classes}
        holders = defaultdict(set)  # label -> image ids with a non-crowd instance
        for a in coco.dataset.get('annotations', []):
            if a['image_id'] not in coco.imgs:
                raise ValueError(f'annotation {a.get("id")} of {self.ann_file} refers to '
                                 f'image {a["image_id"]}, which is not in its "images"')
            if a['category_id'] in cat2label and not a.get('iscrowd', 0):
                holders[cat2label[a['category_id']]].add(a['image_id'])
        img_ids = sorted(set().union(*holders.values())) if holders else []
        index = {i: j for j, i in enumerate(img_ids)}
        records = [dict(img_path=osp.join(self.data_prefix.get('img', ''),
                                          coco.imgs[i]['file_name']),
                        key=f'{osp.basename(self.ann_file)}:{i}', img_id=i)
                   for i in img_ids]
        self.coco, self._label2cat = coco, {lb: c for c, lb in cat2label.items()}
        return classes, records, {lb: sorted(index[i] for i in ids)
                                  for lb, ids in holders.items()}

    def load_mask(self, record: dict, label: int) -> Tuple[np.ndarray, np.ndarray]:
        img = self.coco.imgs[record['img_id']]
        fg = np.zeros((img['height'], img['width']), bool)
        for a in self.coco.loadAnns(self.coco.getAnnIds(
                imgIds=[record['img_id']], catIds=[self._label2cat[label]])):
            fg |= self.coco.annToMask(a).astype(bool)
        return fg, np.zeros_like(fg)
