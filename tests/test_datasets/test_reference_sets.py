"""k-shot evaluation reference sets: each filter, the selection, the file format, the CLI."""
import copy
import json
import os.path as osp

import numpy as np
import pytest

from helpers import load_tool
from mmsamantics.datasets import (eligible_references, load_reference_set,
                                  select_reference_set)
from mmsamantics.utils.checkpoint import MissingResourceError

CATS = [dict(id=1, name='cat'), dict(id=2, name='dog'), dict(id=3, name='kite')]


def _ann(i, img, cat, bbox, area=-1, iscrowd=0):
    a = dict(id=i, image_id=img, category_id=cat, bbox=[float(v) for v in bbox],
             iscrowd=iscrowd, segmentation=[[0.0, 0.0, 1.0, 0.0, 1.0, 1.0]])
    if area is not None:
        a['area'] = float(bbox[2] * bbox[3] * 0.9 if area == -1 else area)
    return a


def filter_coco():
    """One instance per filter, each failing exactly that filter (or passing at its bound)."""
    anns = [
        _ann(1, 1, 1, [20, 20, 40, 40], 1500),                # eligible
        _ann(2, 2, 1, [20, 20, 40, 40], iscrowd=1),           # crowd
        _ann(3, 3, 1, [20, 20, 32, 32], 1024),                # area == min_area: too small
        _ann(4, 4, 1, [15, 15, 170, 170], 20000),             # area == 50% image: too large
        _ann(5, 5, 1, [15, 15, 170, 170], 19999),             # just under: eligible
        _ann(6, 6, 1, [20, 20, 160, 30], 4000),               # aspect 5.33
        _ann(7, 7, 1, [20, 20, 30, 150], 4000),               # aspect 1/5 exactly: eligible
        _ann(8, 8, 1, [5, 50, 40, 40], 1500),                 # 5 px from the left edge
        _ann(9, 9, 1, [151, 50, 40, 40], 1500),               # 9 px from the right edge
        _ann(10, 10, 1, [10, 10, 40, 40], 1500),              # exactly 10 px (60 x 60 image)
        _ann(11, 11, 1, [20, 20, 0.5, 40], 2000),             # degenerate box
        _ann(12, 12, 1, [20, 20, 40, 40], None),              # no area field: box area 1600
        _ann(13, 13, 1, [20, 20, 100, 100], 9000),            # IoU 0.4, same class
        _ann(14, 13, 1, [20, 20, 100, 40], 3500),
        _ann(15, 14, 1, [20, 20, 100, 100], 9000),            # IoU 0.3, other class: both ok
        _ann(16, 14, 2, [20, 20, 100, 30], 2800),
        _ann(17, 15, 1, [20, 20, 100, 100], 9000),            # IoU 0.4 with a crowd region
        _ann(18, 15, 3, [20, 20, 100, 40], 3500, iscrowd=1),
    ]
    images = [dict(id=i, file_name=f'{i}.jpg', width=60 if i == 10 else 200,
                   height=60 if i == 10 else 200) for i in range(1, 16)]
    return dict(images=images, annotations=anns, categories=copy.deepcopy(CATS))


def grid_coco(num_images=40, seed=0):
    """Images with 4 separated, always-eligible instances; 'kite' in 3 images only."""
    rng = np.random.default_rng(seed)
    images, anns = [], []
    for i in range(1, num_images + 1):
        images.append(dict(id=i, file_name=f'{i}.jpg', width=300, height=300))
        for cell in range(4):
            cat = 3 if (cell == 0 and i <= 3) else int(rng.integers(1, 3))
            s = int(rng.integers(35, 100))
            x, y = 20 + 150 * (cell % 2), 20 + 150 * (cell // 2)
            anns.append(_ann(len(anns) + 1, i, cat, [x, y, s, s], s * s - cell))
    cats = copy.deepcopy(CATS) + [dict(id=4, name='boat')]  # no instance at all
    return dict(images=images, annotations=anns, categories=cats)


def test_each_filter_excludes_exactly_its_instance():
    elig = eligible_references(filter_coco())
    assert {c: [a['id'] for a in v] for c, v in elig.items()} == \
        {1: [1, 5, 7, 10, 12, 15], 2: [16], 3: []}
    # looser thresholds let the excluded ones back in, one filter at a time
    def ids(**kw):
        return {a['id'] for v in eligible_references(filter_coco(), **kw).values() for a in v}

    assert 3 in ids(min_area=1000) and 4 in ids(max_area_frac=0.6)
    assert 6 in ids(max_aspect=6) and {8, 9} <= ids(border=5)
    assert {13, 14} <= ids(max_iou=0.4) and 17 in ids(max_iou=0.4)
    assert not {2, 11, 18} & ids(min_area=0, border=0, max_iou=1, max_aspect=1e3)
    dog = eligible_references(filter_coco(), classes=['dog'])
    assert dog == {2: [filter_coco()['annotations'][15]]}


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"unknown class names \['dgo'\]"):
        eligible_references(filter_coco(), classes=['dgo'])
    with pytest.raises(ValueError, match='no annotations'):
        eligible_references(dict(filter_coco(), annotations=[]))
    with pytest.raises(ValueError, match='max_iou=1.5'):
        eligible_references(filter_coco(), max_iou=1.5)
    with pytest.raises(MissingResourceError, match='nope.json'):
        eligible_references(str(tmp_path / 'nope.json'))
    orphan = filter_coco()
    orphan['annotations'][0]['image_id'] = 999
    with pytest.raises(ValueError, match=r'annotations \[1\] refer to image ids missing'):
        eligible_references(orphan)
    with pytest.raises(ValueError, match='no annotation .* passes the reference filters'):
        select_reference_set(filter_coco(), 0, min_area=1e6)
    with pytest.raises(ValueError, match='seed must be'):
        select_reference_set(filter_coco(), -1)


def test_selection_is_deterministic_one_per_image_and_area_sorted():
    coco = grid_coco()
    ref = select_reference_set(coco, 42, max_shots=5)
    assert ref == select_reference_set(copy.deepcopy(coco), 42, max_shots=5)
    other = select_reference_set(coco, 123, max_shots=5)
    assert {a['id'] for a in ref['annotations']} != {a['id'] for a in other['annotations']}

    src = {a['id']: a for a in coco['annotations']}
    by_cat = {}
    for a in ref['annotations']:
        assert {k: v for k, v in a.items() if k != 'shot'} == src[a['id']]  # original
        by_cat.setdefault(a['category_id'], []).append(a)
    for cat, refs in by_cat.items():
        assert [a['shot'] for a in refs] == list(range(len(refs)))
        assert len({a['image_id'] for a in refs}) == len(refs)  # one reference per image
        areas = [a['area'] for a in refs]
        assert areas == sorted(areas, reverse=True)
    assert {c: len(v) for c, v in by_cat.items()} == {1: 5, 2: 5, 3: 3}

    # the documented procedure, step by step
    cands = sorted((a for a in coco['annotations'] if a['category_id'] == 1),
                   key=lambda a: a['id'])
    kept, seen = [], set()
    for j in np.random.default_rng([42, 1]).permutation(len(cands)):
        if cands[j]['image_id'] not in seen and len(kept) < 5:
            seen.add(cands[j]['image_id'])
            kept.append(cands[j]['id'])
    assert {a['id'] for a in by_cat[1]} == set(kept)

    info = ref['info']
    assert info['seed'] == 42 and info['max_shots'] == 5 and info['filters']['max_iou'] == 0.35
    assert info['shots_available'] == {'cat': 5, 'dog': 5, 'kite': 3, 'boat': 0}
    assert info['classes_without_references'] == ['boat']
    assert ref['categories'] == coco['categories']
    assert {im['id'] for im in ref['images']} == {a['image_id'] for a in ref['annotations']}
    # a class's references do not depend on which other classes are selected
    dogs = select_reference_set(coco, 42, max_shots=5, classes=['dog'])
    assert dogs['annotations'] == by_cat[2]
    assert dogs['info']['shots_available'] == {'dog': 5}


def test_load_reference_set_prefix_and_errors(tmp_path, monkeypatch):
    coco = grid_coco()
    path = str(tmp_path / 'refs.json')
    full = select_reference_set(coco, 7, max_shots=6)
    json.dump(full, open(path, 'w'))
    logged = []
    monkeypatch.setattr('mmsamantics.datasets.reference_sets.print_log',
                        lambda msg, **kw: logged.append(msg))
    three = load_reference_set(path, 3)
    assert {c: [a['id'] for a in v] for c, v in three.items()} == {
        c: [a['id'] for a in full['annotations'] if a['category_id'] == c and a['shot'] < 3]
        for c in (1, 2, 3)}
    assert len(logged) == 1 and "'boat' has no reference" in logged[0]
    six = load_reference_set(path, 6)
    assert [len(six[c]) for c in (1, 2, 3)] == [6, 6, 3] and 4 not in six
    assert any("'kite' has only 3" in m for m in logged)

    with pytest.raises(MissingResourceError, match='make_reference_sets.py'):
        load_reference_set(str(tmp_path / 'missing.json'), 1)
    plain = str(tmp_path / 'plain.json')
    json.dump(coco, open(plain, 'w'))
    with pytest.raises(ValueError, match='not a reference-set file'):
        load_reference_set(plain, 1)
    with pytest.raises(ValueError, match='shots must be an integer >= 1'):
        load_reference_set(path, 0)


@pytest.mark.e2e
def test_cli_on_toy_world(toy_root, tmp_path, capsys):
    tool = load_tool('tools/misc/make_reference_sets.py')
    ann = osp.join(toy_root, 'annotations/instances_train.json')
    out = str(tmp_path / 'refs')
    tool.main([ann, '--out-dir', out, '--seeds', '42', '123', '--max-shots', '3',
               '--min-area', '256', '--border', '4', '--selection', 'per-class',
               '--classes-file',
               osp.join(toy_root, 'annotations/splits.json'), '--split', 'novel'])
    printed = capsys.readouterr().out
    assert 'red star' in printed and 'eligible images' in printed
    for seed in (42, 123):
        ref = json.load(open(osp.join(out, f'refs_seed{seed}.json')))
        assert ref['info']['source_ann_file'] == 'instances_train.json'
        assert ref['info']['seed'] == seed and ref['info']['filters']['border'] == 4
        assert set(ref['info']['shots_available']) == {'red star', 'green triangle',
                                                      'blue square'}
        refs = load_reference_set(osp.join(out, f'refs_seed{seed}.json'), 1)
        names = {c['id']: c['name'] for c in ref['categories']}
        assert {names[c] for c in refs} <= set(ref['info']['shots_available'])
        assert refs and all(len(v) == 1 and v[0]['shot'] == 0 for v in refs.values())
    with pytest.raises(SystemExit, match="'nvel' is not a key"):
        tool.main([ann, '--out-dir', out, '--classes-file',
                   osp.join(toy_root, 'annotations/splits.json'), '--split', 'nvel'])
