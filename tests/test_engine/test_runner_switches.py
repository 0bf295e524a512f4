"""A config that carries an evaluation switch (a reference control, a subset of queried
classes) is never dumped under the config's own name, where it would pass for the config of
the checkpoint beside it."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from helpers import TOY_CONFIG, toy_cfg
from mmsamantics.engine import InContextRunner, build_runner, evaluation_switches
from mmsamantics.engine.runner import switch_suffix


def test_switches_of_a_config():
    cfg = Config.fromfile(TOY_CONFIG)
    assert evaluation_switches(cfg) == {} and switch_suffix(cfg) == ''
    cfg.test_dataloader.dataset.ref_control = 'shuffled'
    assert evaluation_switches(cfg) == {'control': 'cyclic'}
    cfg.test_dataloader.dataset.query_classes = ['red circle']
    assert switch_suffix(cfg) == '.control-cyclic.query-classes'
    cfg.test_dataloader.dataset.ref_control = 'none'
    assert evaluation_switches(cfg) == {'query-classes': '1'}
    # a wrapped dataset is looked into
    cfg = Config(dict(val_dataloader=dict(dataset=dict(type='ConcatDataset', datasets=[
        dict(type='X'), dict(type='Y', ref_control='same-kind')]))))
    assert evaluation_switches(cfg) == {'control': 'same-kind'}
    with pytest.raises(ValueError, match='ref_control must be'):
        evaluation_switches(Config(dict(test_dataloader=dict(dataset=dict(ref_control='x')))))


@pytest.mark.parametrize('control', [None, 'random-3'])
def test_the_dumped_config_says_when_it_carries_a_control(toy_root, tmp_path, control):
    cfg = toy_cfg(toy_root)
    cfg.test_dataloader.dataset.update(mode='open', ref_control=control)
    cfg.work_dir = str(tmp_path)
    runner = build_runner(cfg)
    assert isinstance(runner, InContextRunner)
    stem = osp.splitext(osp.basename(TOY_CONFIG))[0]
    dumped = sorted(osp.basename(p) for p in glob.glob(str(tmp_path / '*.py')))
    if control is None:
        assert dumped == [f'{stem}.py']
    else:
        assert dumped == [f'{stem}.control-random-3.py']
        again = Config.fromfile(str(tmp_path / dumped[0]))
        assert again.test_dataloader.dataset.ref_control == 'random-3'


def test_a_control_dump_run_without_its_control_is_dumped_under_the_plain_name(
        toy_root, tmp_path):
    """The dump of a control run, run again with ``--ref-control none``, is dumped as the
    config it came from: its name no longer claims a control."""
    cfg = toy_cfg(toy_root)
    cfg.test_dataloader.dataset.ref_control = 'same-kind'
    first = tmp_path / 'first'
    cfg.work_dir = str(first)
    build_runner(cfg)
    stem = osp.splitext(osp.basename(TOY_CONFIG))[0]
    dumped = Config.fromfile(str(first / f'{stem}.control-same-kind.py'))
    dumped.test_dataloader.dataset.ref_control = None
    dumped.work_dir = str(tmp_path / 'second')
    build_runner(dumped)
    assert [osp.basename(p) for p in glob.glob(str(tmp_path / 'second' / '*.py'))] == [
        f'{stem}.py']
