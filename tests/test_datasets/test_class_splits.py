import json
import os.path as osp
import subprocess
import sys

import pytest

from mmdet.registry import DATASETS
from helpers import REPO, toy_cfg
from mmsamantics.datasets.class_splits import (COCO_NOVEL_CLASSES, coco_novel_splits,
                                               keep_classes)


def test_coco_novel_split_is_the_20_voc_classes():
    from mmengine.config import Config
    names = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets/coco_novel_classes.py'))
    coco = dict(categories=[dict(id=i + 1, name=n) for i, n in enumerate(names.coco_classes)])
    s = coco_novel_splits(coco)
    assert len(s['base']) == 60 and len(s['novel']) == 20
    assert s['novel'] == names.coco_novel_classes and s['base'] == names.coco_base_classes
    assert set(COCO_NOVEL_CLASSES) == set(s['novel'])
    with pytest.raises(ValueError, match='not a COCO 2017 annotation file'):
        coco_novel_splits(dict(categories=[dict(id=1, name='red star')]))


def test_base_only_file_matches_metainfo_filtering(toy_root, tmp_path):
    ann = osp.join(toy_root, 'annotations/instances_train.json')
    out = tmp_path / 'instances_train_base.json'
    p = subprocess.run([sys.executable, 'tools/misc/make_coco_novel.py', ann, '--out', str(out),
                        '--splits-file', osp.join(toy_root, 'annotations/splits.json')],
                       cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    with open(ann) as f:
        src = json.load(f)
    with open(out) as f:
        base = json.load(f)
    with open(osp.join(toy_root, 'annotations/splits.json')) as f:
        splits = json.load(f)
    novel_ids = {c['id'] for c in src['categories'] if c['name'] in splits['novel']}
    assert base['categories'] == src['categories']  # label space unchanged
    assert not any(a['category_id'] in novel_ids for a in base['annotations'])
    assert len(base['annotations']) == sum(a['category_id'] not in novel_ids
                                           for a in src['annotations'])
    # training on the base-only file = training with metainfo classes = base (the toy config)
    cfg = toy_cfg(toy_root)
    a = DATASETS.build(cfg.train_dataloader.dataset)
    ds = dict(cfg.train_dataloader.dataset, ann_file=str(out))
    b = DATASETS.build(ds)
    ia = [(d['img_id'], [i['bbox'] for i in d['instances']]) for d in a.data_list]
    ib = [(d['img_id'], [i['bbox'] for i in d['instances']]) for d in b.data_list]
    assert ia == ib


def test_keep_classes_errors():
    with pytest.raises(ValueError, match=r"\['zebra'\] are not categories"):
        keep_classes(dict(categories=[dict(id=1, name='cat')], images=[], annotations=[]),
                     ['zebra'])
