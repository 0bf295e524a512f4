"""The reference path is used: the trained ``make demo`` detector scores clearly lower under
every wrong reference of the control family (a cyclic derangement, random ones, a class of
the same colour, a class of the same shape), on both reference choices, per class on average;
and a control is never carried silently by a config that a run dumps.

The fixture is the ``make demo`` detector (``configs/insam_detr_toy_shape.py``: region and
shape tokens, the shape-aware head with D4 symmetry, trained on the toy world's base
classes), stripped to its weights in float16 by ``python tools/misc/publish_model.py
work_dirs/demo/epoch_N.pth tests/fixtures/insam_detr_toy_shape.pth --fp16``. It holds the
frozen toy SAM too, so no other checkpoint is read. The targets are toy-world images it never
saw in training (the validation images of a world of the same generator and seed).
"""
import glob
import json
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from helpers import PY, TRAINED_CONFIG, load_tool, run_tool, toy_overrides
from helpers import trained_checkpoint as fixture
from mmsamantics.datasets import toy_splits
from mmsamantics.evaluation import control_summary, split_derived
from mmsamantics_toy.toy_world import make_toy_world

CONFIG = TRAINED_CONFIG
STEM = osp.splitext(osp.basename(CONFIG))[0]


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('guard') / 'world')
    make_toy_world(root, seed=0, num_train=48, num_val=24)
    load_tool('tools/misc/make_reference_sets.py').main([
        osp.join(root, 'annotations', 'instances_train.json'), '--out-dir',
        osp.join(root, 'refs'), '--seeds', '42', '--max-shots', '1', '--min-area', '256',
        '--border', '4'])
    return root


@pytest.mark.e2e
@pytest.mark.parametrize('choice', ['default', 'refs_seed42'])
def test_every_wrong_reference_scores_clearly_lower(world, tmp_path, choice):
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(toy_overrides(world))
    cfg.test_dataloader.dataset.mode = 'open'
    if choice == 'refs_seed42':
        cfg.test_dataloader.dataset.ref_set_file = osp.join(world, 'refs', 'refs_seed42.json')
    cfg.test_evaluator.update(classwise=True, derived_controls=['family'])
    cfg.load_from, cfg.work_dir = fixture(), str(tmp_path)
    right, controls = split_derived(Runner.from_cfg(cfg).test())
    summary = control_summary(right, controls, toy_splits())
    assert list(summary) == ['right', 'cyclic', 'random', 'same-attribute', 'same-kind']
    assert summary['right']['base'][0] > 0.3, summary['right']
    for group, row in list(summary.items())[1:]:
        # every derangement, the same-colour one included, costs a quarter of the base
        # classes' AP50 and loses to the right references per class on average; a model
        # that ignores its references (or matches colour only) scores the same under them
        assert row['base_drop'] > 0.25 and row['pass'], (group, row)
    # no config that carries a control was dumped: the run had none
    assert [osp.basename(p) for p in glob.glob(str(tmp_path / '*.py'))] == [f'{STEM}.py']


def _cli(world, work, *extra):
    over = [f'{k}={v}' for k, v in toy_overrides(world).items() if 'train' not in k]
    return run_tool([PY, 'tools/test.py', *extra, '--work-dir', str(work), '--cfg-options',
                     'test_dataloader.dataset.mode=open', 'test_dataloader.dataset.indices=12',
                     *over], timeout=400)


@pytest.mark.e2e
def test_a_control_is_announced_recorded_and_never_dumped_as_the_config(world, tmp_path):
    """The user's path: a control run through tools/test.py says so, records it, and dumps
    its config under a name that says so; that dumped config, run again, says so too, and
    ``--ref-control none`` gives the right references back."""
    out = tmp_path / 'ctrl.json'
    rc, log = _cli(world, tmp_path / 'ctrl', CONFIG, fixture(), '--ref-control', 'shuffled',
                   '--metrics-out', str(out))
    assert rc == 0, log[-3000:]
    assert '[control] cyclic' in log
    metrics = json.loads(out.read_text())
    assert metrics['coco/reference_control'] == 'cyclic'
    assert 'coco/bbox_mAP_50/red circle' in metrics  # per-class AP comes with a control
    dumped = sorted(osp.basename(p) for p in glob.glob(str(tmp_path / 'ctrl' / '*.py')))
    assert dumped == [f'{STEM}.control-cyclic.py']
    carried = str(tmp_path / 'ctrl' / dumped[0])
    rc, log = _cli(world, tmp_path / 'again', carried, fixture(), '--metrics-out',
                   str(tmp_path / 'again.json'))
    assert rc == 0 and '[control] cyclic' in log, log[-3000:]
    rc, log = _cli(world, tmp_path / 'none', carried, fixture(), '--ref-control', 'none',
                   '--metrics-out', str(tmp_path / 'none.json'))
    assert rc == 0 and 'no reference control' in log and '[control]' not in log, log[-3000:]
    none = json.loads((tmp_path / 'none.json').read_text())
    assert none['coco/reference_control'] == 'none'
    # the right references win over the control the config carried
    assert none['coco/base_bbox_mAP_50'] > metrics['coco/base_bbox_mAP_50'] + 0.1
    assert sorted(osp.basename(p) for p in glob.glob(str(tmp_path / 'none' / '*.py'))) == [
        osp.basename(carried).replace('.control-cyclic', '')]
