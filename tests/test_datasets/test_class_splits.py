import json
import os.path as osp

import pytest

from mmdet.registry import DATASETS
from helpers import PY, run_tool, toy_cfg
from mmsamantics.datasets.class_splits import (CLASS_SPLIT_NAMES, COCO_NOVEL_CLASSES,
                                               coco_classes, coco_novel_splits, keep_classes,
                                               named_class_splits, split_classes, voc_classes)
from mmsamantics.datasets.toy_class_names import toy_classes, toy_splits


def test_coco_novel_split_is_the_20_voc_classes():
    coco = dict(categories=[dict(id=i + 1, name=n) for i, n in enumerate(coco_classes())])
    s = coco_novel_splits(coco)
    assert len(s['base']) == 60 and len(s['novel']) == 20
    assert s['novel'] == split_classes('coco-novel') and s['base'] == split_classes('coco-base')
    assert named_class_splits('coco-novel') == s
    assert set(COCO_NOVEL_CLASSES) == set(s['novel'])
    # the novel classes are the PASCAL VOC ones under their COCO names
    voc_in_coco = {'aeroplane': 'airplane', 'diningtable': 'dining table',
                   'motorbike': 'motorcycle', 'pottedplant': 'potted plant', 'sofa': 'couch',
                   'tvmonitor': 'tv'}
    assert {voc_in_coco.get(c, c) for c in voc_classes()} == set(COCO_NOVEL_CLASSES)
    with pytest.raises(ValueError, match='not a COCO 2017 annotation file'):
        coco_novel_splits(dict(categories=[dict(id=1, name='red star')]))


def test_named_splits():
    assert len(coco_classes()) == 80 and coco_classes()[:2] == ['person', 'bicycle']
    for name in CLASS_SPLIT_NAMES:
        assert split_classes(name), name
    # COCO-20i fold f: classes f, f + 4, ... (0-based); PASCAL-5i fold f: VOC 5f .. 5f + 4
    for fold in range(4):
        test, train = (split_classes(f'coco-20i-fold{fold}-{s}') for s in ('test', 'train'))
        assert test == coco_classes()[fold::4] and len(train) == 60
        assert sorted(test + train, key=coco_classes().index) == coco_classes()
        test = split_classes(f'pascal-5i-fold{fold}-test')
        assert test == voc_classes()[5 * fold:5 * fold + 5]
        assert len(split_classes(f'pascal-5i-fold{fold}-train')) == 15
    assert split_classes('toy') == toy_classes()
    assert named_class_splits('toy') == toy_splits()
    with pytest.raises(ValueError, match='unknown class split'):
        split_classes('coco-20i-fold4-test')


def test_dataset_class_split_equals_metainfo(toy_root, tmp_path):
    base = dict(type='InContextCocoDataset', data_root=toy_root,
                ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                ref_min_area=16 * 16)
    by_name = DATASETS.build(dict(base, class_split='toy-base'))
    listed = DATASETS.build(dict(base, metainfo=dict(classes=toy_splits()['base'])))
    assert by_name.metainfo['classes'] == listed.metainfo['classes'] == toy_splits()['base']
    assert [d['instances'] for d in by_name.data_list] == [d['instances'] for d in listed.data_list]
    # both given: fine when they agree, an error when they differ
    DATASETS.build(dict(base, class_split='toy', metainfo=dict(classes=toy_classes())))
    with pytest.raises(ValueError, match='name different classes'):
        DATASETS.build(dict(base, class_split='toy', metainfo=dict(classes=['red star'])))
    # 'ann_file': every category of the annotation file
    whole = DATASETS.build(dict(base, class_split='ann_file'))
    assert whole.metainfo['classes'] == toy_classes()


@pytest.mark.e2e
def test_base_only_file_matches_metainfo_filtering(toy_root, tmp_path):
    ann = osp.join(toy_root, 'annotations/instances_train.json')
    out = tmp_path / 'instances_train_base.json'
    rc, log = run_tool([PY, 'tools/misc/make_coco_novel.py', ann, '--out', str(out),
                        '--splits-file', osp.join(toy_root, 'annotations/splits.json')])
    assert rc == 0, log[-3000:]
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
