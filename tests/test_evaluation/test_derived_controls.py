"""Open-mode reference controls derived from the right run's predictions equal the controls
run for real (the dataset giving each class its donor's references), on a trained model
whose classes score differently under each control, so the equality is not trivial."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from helpers import REPO, toy_overrides
from mmsamantics.evaluation import split_derived
from mmsamantics_toy.toy_world import make_toy_world

CONFIG = osp.join(REPO, 'configs', 'insam_detr_toy_shape.py')
CONTROLS = ['cyclic', 'random-1', 'same-attribute', 'same-kind']


def run(root, work, control=None, derived=()):
    fixture = glob.glob(osp.join(REPO, 'tests', 'fixtures', 'insam_detr_toy_shape-*.pth'))
    assert len(fixture) == 1, fixture
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict(toy_overrides(root))
    cfg.test_dataloader.dataset.update(mode='open', ref_control=control, shots=2)
    cfg.test_evaluator.update(classwise=True, derived_controls=list(derived),
                              derived_metrics=['bbox', 'segm'])
    cfg.load_from, cfg.work_dir = fixture[0], str(work)
    cfg.experiment_name = f'derived_{control}'
    return Runner.from_cfg(cfg).test()


@pytest.mark.e2e
def test_derived_controls_equal_real_control_runs(tmp_path):
    root = str(tmp_path / 'world')
    make_toy_world(root, seed=0, num_train=48, num_val=12)
    right, derived = split_derived(run(root, tmp_path / 'right', derived=CONTROLS))
    assert sorted(derived) == sorted(CONTROLS)
    assert right['coco/reference_control'] == 'none'
    for control in ('cyclic', 'same-kind'):
        real = run(root, tmp_path / control, control=control)
        assert real['coco/reference_control'] == control
        keys = [k for k in real if k != 'coco/reference_control']
        assert len(keys) > 40  # splits and per-class values of boxes and masks
        assert {k: derived[control][k] for k in keys} == {k: real[k] for k in keys}
        # the control changed what is measured: equal numbers are not trivially equal
        assert any(derived[control][k] != right[k] for k in keys if '/' in k[5:])
