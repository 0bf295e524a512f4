import copy
import json
import os.path as osp

import pytest

from mmsamantics.datasets import InContextCocoDataset, toy_classes, toy_splits
from mmsamantics.utils import MissingResourceError


def build(root, mode='train', **kw):
    split = 'train' if mode == 'train' else 'val'
    args = dict(data_root=root, ann_file=f'annotations/instances_{split}.json',
                data_prefix=dict(img=f'{split}/'), mode=mode, ref_min_area=16 * 16,
                metainfo=dict(classes=toy_classes()), pipeline=[], test_mode=mode != 'train')
    if mode != 'train':
        args.update(ref_ann_file='annotations/instances_train.json', ref_img_prefix='train/')
    args.update(kw)
    return InContextCocoDataset(**args)


def test_train_references_deterministic_other_image_and_per_epoch(toy_root):
    ds = build(toy_root, max_classes_per_image=2, ref_seed=1)
    again = build(toy_root, max_classes_per_image=2, ref_seed=1)  # a second, fresh dataset
    changed = False
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        refs = ds.sample_references(i, info)
        assert refs == again.sample_references(i, again.get_data_info(i))
        present = {inst['bbox_label'] for inst in info['instances']}
        labels = [r['label'] for r in refs]
        assert len(labels) == len(set(labels)) <= 2
        assert set(labels) <= present
        assert all(r['img_id'] != info['img_id'] for r in refs)
        ds.set_epoch(1)
        changed |= ds.sample_references(i, info) != refs
        ds.set_epoch(0)
    assert changed, 'references never change between epochs'


def test_negative_classes_are_absent_from_target(toy_root):
    ds = build(toy_root, max_classes_per_image=4, neg_classes_per_image=2)
    info = ds.get_data_info(0)
    present = {inst['bbox_label'] for inst in info['instances']}
    labels = [r['label'] for r in ds.sample_references(0, info)]
    assert len([lb for lb in labels if lb not in present]) == 2


def test_train_shots_draw_k_distinct_references_per_class(toy_root):
    one = build(toy_root, max_classes_per_image=2, ref_seed=3)
    k1 = build(toy_root, max_classes_per_image=2, ref_seed=3, train_shots=1)
    k3 = build(toy_root, max_classes_per_image=2, ref_seed=3, train_shots=3)
    counts = set()
    for i in range(len(k3)):
        info = k3.get_data_info(i)
        # train_shots=1 is the paper's sampling, draw for draw
        assert k1.sample_references(i, info) == one.sample_references(i, info)
        refs = k3.sample_references(i, info)
        assert refs == k3.sample_references(i, info)  # deterministic
        by_label = {}
        for r in refs:
            by_label.setdefault(r['label'], []).append(r)
        for lb, rs in by_label.items():
            keys = [r['key'] for r in rs]
            assert len(keys) == len(set(keys)) <= 3  # distinct shots, at most train_shots
            assert all(r['img_id'] != info['img_id'] for r in rs)
            counts.add(len(rs))
    assert counts == {1, 2, 3}  # every k of 1..3 occurs on the toy train set
    with pytest.raises(ValueError, match='train_shots must be >= 1'):
        build(toy_root, train_shots=0)


def test_oracle_and_open_modes(toy_root):
    oracle = build(toy_root, 'oracle', shots=2, ref_seed=42)
    opened = build(toy_root, 'open', shots=2, ref_seed=42)
    for i in range(len(oracle)):
        info = oracle.get_data_info(i)
        present = {inst['bbox_label'] for inst in info['instances']}
        refs = oracle.sample_references(i, info)
        assert {r['label'] for r in refs} == present
        open_refs = opened.sample_references(i, info)
        assert {r['label'] for r in open_refs} == set(range(len(toy_classes())))
    # k-shot: distinct images per class, fixed by the seed, drawn from the TRAIN json
    for label, refs in oracle.reference_set.items():
        images = {r['img_id'] for r in oracle.ref_pool[label]}
        assert len(refs) == min(2, len(images))
        assert len({r['img_id'] for r in refs}) == len(refs)  # one reference per image
        assert all('instances_train.json' in r['key'] for r in refs)
    other = build(toy_root, 'oracle', shots=2, ref_seed=7)
    assert other.reference_set != oracle.reference_set
    assert build(toy_root, 'oracle', shots=2, ref_seed=42).reference_set == oracle.reference_set


def test_shot_index_queries_one_shot_of_the_k_shot_draw(toy_root, tmp_path):
    """shot_index=i: every class gets reference i of its k-shot draw alone (the seeded draw
    and a reference-set file alike), the references a k-shot run averages one by one."""
    from helpers import load_tool
    # the test world's red triangle has one eligible reference: named when it is too few
    with pytest.raises(ValueError, match=r"shot_index=3: classes \['red triangle'\] have "
                                         'fewer than 4 references'):
        build(toy_root, 'open', shot_index=3, ref_seed=42)
    classes = dict(classes=[c for c in toy_classes() if c != 'red triangle'])
    five = build(toy_root, 'open', shots=5, ref_seed=42, metainfo=classes)
    for i in (0, 3):
        one = build(toy_root, 'open', shot_index=i, ref_seed=42, metainfo=classes)
        assert one.reference_set == {lb: [r[i]] for lb, r in five.reference_set.items()}
        assert one.metainfo['shot_index'] == i and len(one.reference_set) == 11
    tool = load_tool('tools/misc/make_reference_sets.py')
    tool.main([osp.join(toy_root, 'annotations/instances_train.json'), '--out-dir',
               str(tmp_path), '--seeds', '42', '--max-shots', '5', '--min-area', '256'])
    ref_set = str(tmp_path / 'refs_seed42.json')
    five = build(toy_root, 'open', shots=5, ref_set_file=ref_set)
    two = {lb: r for lb, r in five.reference_set.items() if len(r) >= 2}
    classes = dict(classes=[toy_classes()[lb] for lb in sorted(two)])
    second = build(toy_root, 'open', shot_index=1, ref_set_file=ref_set, metainfo=classes)
    # labels count the 9 classes kept: the references are compared by key
    assert [[r['key'] for r in refs] for refs in second.reference_set.values()] == \
        [[r[1]['key']] for r in two.values()]
    assert len(two) == 9 and all(r[1]['key'].startswith('instances_train.json:')
                                 for r in two.values())
    for bad in (dict(mode='train', shot_index=0), dict(shots=2, shot_index=1),
                dict(shot_index=-1)):
        with pytest.raises(ValueError, match='shot_index'):
            build(toy_root, **dict(dict(mode='open'), **bad))


def test_base_only_training_drops_novel_ground_truth(toy_root):
    base = toy_splits()['base']
    ds = build(toy_root, metainfo=dict(classes=base))
    assert ds.metainfo['classes'] == tuple(base) or list(ds.metainfo['classes']) == base
    for i in range(len(ds)):
        for inst in ds.get_data_info(i)['instances']:
            assert 0 <= inst['bbox_label'] < len(base)


def _write(path, coco):
    with open(path, 'w') as f:
        json.dump(coco, f)
    return str(path)


def test_bad_annotation_files(toy_root, tmp_path):
    with pytest.raises(MissingResourceError, match='annotation file not found'):
        build(toy_root, ann_file=str(tmp_path / 'nope.json'))
    empty = _write(tmp_path / 'empty.json', dict(images=[], annotations=[],
                                                 categories=[dict(id=1, name='red circle')]))
    with pytest.raises(ValueError, match='has no images'):
        build(toy_root, ann_file=empty, metainfo=dict(classes=['red circle']))
    with pytest.raises(ValueError, match='ascending category-id order'):
        build(toy_root, metainfo=dict(classes=toy_classes()[::-1]))
    with pytest.raises(ValueError, match='not categories'):
        build(toy_root, metainfo=dict(classes=['purple hexagon']))


def test_class_without_reference(toy_root, tmp_path, monkeypatch):
    coco = json.load(open(osp.join(toy_root, 'annotations/instances_train.json')))
    coco['annotations'] = [a for a in coco['annotations'] if a['category_id'] != 1]
    refs = _write(tmp_path / 'refs.json', coco)
    with pytest.raises(ValueError, match="without any eligible reference.*'red circle'"):
        build(toy_root, 'open', ref_ann_file=refs)
    # in training the class's ground truth is not used, and the log says so
    logged = []
    monkeypatch.setattr('mmsamantics.datasets.in_context_coco.print_log',
                        lambda msg, **kw: logged.append(msg))
    ds = build(toy_root, ann_file=refs)
    assert 0 not in ds.ref_pool
    assert any("'red circle'" in m and 'not used for training' in m for m in logged)


def test_degenerate_boxes_are_reported_and_never_references(toy_root, tmp_path, monkeypatch):
    coco = json.load(open(osp.join(toy_root, 'annotations/instances_train.json')))
    bad = copy.deepcopy(coco['annotations'][0])
    bad.update(id=10 ** 6, bbox=[5.0, 5.0, 0.0, 12.0], area=0.0)
    coco['annotations'].append(bad)
    path = _write(tmp_path / 'degenerate.json', coco)
    logged = []
    monkeypatch.setattr('mmsamantics.datasets.in_context_coco.print_log',
                        lambda msg, **kw: logged.append(msg))
    ds = build(toy_root, ann_file=path)
    assert 10 ** 6 in ds._skipped
    assert any('degenerate boxes' in m and str(10 ** 6) in m for m in logged)
    keys = {r['key'] for refs in ds.ref_pool.values() for r in refs}
    assert f'degenerate.json:{10 ** 6}' not in keys
