"""The toy-world generator (``mmsamantics_toy.toy_world``): valid, deterministic COCO files,
one world per folder, the tool; its classes are those of
``mmsamantics.datasets.toy_class_names``."""
import inspect
import json
import os
import os.path as osp

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from helpers import load_tool
import mmsamantics.datasets.toy_class_names as class_names
import mmsamantics_toy.toy_world as toy_world
from mmsamantics.datasets import split_classes, toy_classes, toy_splits
from mmsamantics_toy.toy_world import (TOY_WORLD_VERSION, ToyWorldMismatchError,
                                       is_current_toy_world, make_toy_world,
                                       read_toy_world_params, suggest_toy_world_dir,
                                       toy_world_params)


def test_toy_world_is_deterministic_and_valid(tmp_path):
    a = make_toy_world(str(tmp_path / 'a'), seed=3, num_train=10, num_val=2)
    b = make_toy_world(str(tmp_path / 'b'), seed=3, num_train=10, num_val=2)
    c = make_toy_world(str(tmp_path / 'c'), seed=4, num_train=10, num_val=2)
    ja, jb, jc = (json.load(open(x['train'])) for x in (a, b, c))
    assert ja['annotations'] == jb['annotations']
    assert ja['annotations'] != jc['annotations']
    assert open(osp.join(tmp_path, 'a/train/000003.png'), 'rb').read() == \
        open(osp.join(tmp_path, 'b/train/000003.png'), 'rb').read()

    cats = {c['id']: c for c in ja['categories']}
    assert [cats[i]['name'] for i in sorted(cats)] == toy_classes()
    assert {c['name'] for c in cats.values() if c['split'] == 'novel'} == set(toy_splits()['novel'])
    imgs = {im['id']: im for im in ja['images']}
    per_img = {}
    for ann in ja['annotations']:
        im = imgs[ann['image_id']]
        per_img.setdefault(ann['image_id'], set()).add(ann['category_id'])
        rles = mask_utils.frPyObjects(ann['segmentation'], im['height'], im['width'])
        m = mask_utils.decode(mask_utils.merge(rles))
        # polygon area and box agree with the stored (visible-mask) area and box
        assert abs(m.sum() - ann['area']) <= 0.15 * ann['area'] + 30
        ys, xs = np.nonzero(m)
        x, y, w, h = ann['bbox']
        assert abs(xs.min() - x) <= 1 and abs(ys.min() - y) <= 1
        assert w >= 1 and h >= 1 and ann['iscrowd'] == 0
    # several instances per image, several classes in some images
    counts = {}
    for ann in ja['annotations']:
        counts[ann['image_id']] = counts.get(ann['image_id'], 0) + 1
    assert np.mean(list(counts.values())) > 1.5
    assert max(len(v) for v in per_img.values()) >= 2
    assert json.load(open(a['splits'])) == toy_splits()
    assert is_current_toy_world(str(tmp_path / 'a'), seed=3, num_train=10, num_val=2)
    assert not is_current_toy_world(str(tmp_path / 'a'), seed=0, num_train=10, num_val=2)
    assert not is_current_toy_world(str(tmp_path / 'missing'))


def test_class_names_have_one_source():
    """The generator draws the very classes the plugin's ``toy`` class splits name."""
    for name in ('COLOURS', 'SHAPES', 'NOVEL', 'toy_classes', 'toy_splits'):
        assert getattr(toy_world, name) is getattr(class_names, name)
    assert split_classes('toy') == toy_classes() and len(toy_classes()) == 12
    assert split_classes('toy-novel') == toy_splits()['novel'] == list(class_names.NOVEL)


def _mtimes(root):
    return {osp.join(d, f): os.stat(osp.join(d, f)).st_mtime_ns
            for d, _, files in os.walk(root) for f in files}


def test_parameters_are_recorded_and_defaults_agree(tmp_path):
    make_toy_world(str(tmp_path), seed=1, num_train=3, num_val=2, img_size_range=(96, 128))
    assert read_toy_world_params(str(tmp_path)) == dict(
        version=TOY_WORLD_VERSION, seed=1, num_train=3, num_val=2, img_size_range=[96, 128],
        instances_range=[2, 6], size_range=[36, 96], classes_range=[1, 3],
        splits=['train', 'val'])
    # toy_world_params mirrors make_toy_world's defaults (the demo's 400/100 world)
    made = inspect.signature(make_toy_world).parameters
    for name, p in inspect.signature(toy_world_params).parameters.items():
        assert made[name].default == p.default, name
    assert toy_world_params()['num_train'] == 400 and toy_world_params()['num_val'] == 100


def test_same_parameters_reuse_the_world(tmp_path):
    root = str(tmp_path / 'w')
    a = make_toy_world(root, seed=1, num_train=3, num_val=2, img_size_range=(96, 128))
    before = _mtimes(root)
    assert len(before) == 3 + 2 + 4  # images, 2 annotation files, splits, params
    assert is_current_toy_world(root, seed=1, num_train=3, num_val=2, img_size_range=(96, 128))
    b = make_toy_world(root, seed=1, num_train=3, num_val=2, img_size_range=(96, 128))
    assert a == b and _mtimes(root) == before  # nothing rewritten
    # an incomplete world of the same parameters is written again
    os.remove(osp.join(root, 'val', '000001.png'))
    assert not is_current_toy_world(root, seed=1, num_train=3, num_val=2,
                                    img_size_range=(96, 128))
    make_toy_world(root, seed=1, num_train=3, num_val=2, img_size_range=(96, 128))
    assert osp.isfile(osp.join(root, 'val', '000001.png'))


def test_other_parameters_are_refused_unless_overwrite(tmp_path):
    root = str(tmp_path / 'toy_world')
    make_toy_world(root, num_train=4, num_val=2, img_size_range=(96, 128))
    before = _mtimes(root)
    assert not is_current_toy_world(root, num_train=5, num_val=2, img_size_range=(96, 128))
    assert not is_current_toy_world(root)  # the default (demo) world is not this one
    with pytest.raises(ToyWorldMismatchError) as e:
        make_toy_world(root, num_train=5, num_val=2, img_size_range=(96, 128))
    msg = str(e.value)
    assert 'a toy world made with other parameters: num_train 4 (wanted 5)' in msg
    assert '"num_train": 4' in msg and '"num_train": 5' in msg  # both parameter sets
    assert f'(e.g. {root}_5x2)' in msg and 'overwrite=True' in msg
    assert _mtimes(root) == before  # the existing world is untouched
    # its own folder, as suggested, leaves the first world alone
    make_toy_world(suggest_toy_world_dir(root, toy_world_params(num_train=5, num_val=2)),
                   num_train=5, num_val=2, img_size_range=(96, 128))
    assert osp.isdir(root + '_5x2/train') and _mtimes(root) == before
    # overwrite replaces it, without leftovers of the larger world
    make_toy_world(root, num_train=2, num_val=2, img_size_range=(96, 128), overwrite=True)
    assert sorted(os.listdir(osp.join(root, 'train'))) == ['000000.png', '000001.png']
    assert read_toy_world_params(root)['num_train'] == 2


def test_unrecorded_files_are_refused(tmp_path):
    root = str(tmp_path / 'old')
    make_toy_world(root, num_train=1, num_val=1, img_size_range=(96, 128))
    os.remove(osp.join(root, 'annotations', 'toy_world.json'))  # an older mmsamantics
    assert not is_current_toy_world(root, num_train=1, num_val=1, img_size_range=(96, 128))
    with pytest.raises(ToyWorldMismatchError, match='toy-world files with no recorded '
                       'parameters'):
        make_toy_world(root, num_train=1, num_val=1, img_size_range=(96, 128))


@pytest.mark.e2e
def test_make_toy_world_tool(tmp_path, capsys):
    tool = load_tool('tools/misc/make_toy_world.py')
    root = str(tmp_path / 'toy_world')
    tool.main([root, '--num-train', '2', '--num-val', '1'])
    assert read_toy_world_params(root)['num_train'] == 2
    before = _mtimes(root)
    tool.main([root, '--num-train', '2', '--num-val', '1'])
    assert 'nothing written' in capsys.readouterr().out and _mtimes(root) == before
    with pytest.raises(SystemExit, match=f'error: {root} already holds a toy world made '
                       r'with other parameters: num_train 2 \(wanted 3\)'):
        tool.main([root, '--num-train', '3', '--num-val', '1'])
    assert _mtimes(root) == before
    tool.main([root, '--num-train', '3', '--num-val', '1', '--force'])
    assert read_toy_world_params(root)['num_train'] == 3
