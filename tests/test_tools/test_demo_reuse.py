"""make demo reuses a trained detector only when it was made from the same config and SAM,
and evaluates it without any reference control in its configs."""
import copy
import json
import os.path as osp

from mmengine.config import Config

from helpers import TOY_CONFIG, load_tool
from mmsamantics.engine import evaluation_switches


def test_reuse_only_the_same_run(tmp_path):
    demo = load_tool('tools/demo.py')
    sam = tmp_path / 'sam.pth'
    sam.write_bytes(b'weights')
    cfg = Config.fromfile(TOY_CONFIG)
    stamp = demo.trained_stamp(cfg, str(sam))
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'epoch_12.pth').write_bytes(b'x')
    (work / 'last_checkpoint').write_text(str(work / 'epoch_12.pth'))
    (work / 'demo_stamp.json').write_text(json.dumps(stamp))
    assert demo.reuse_trained(str(work), stamp)
    assert (work / 'epoch_12.pth').exists()
    # another toy SAM: the trained detector is stale, its checkpoints go
    sam.write_bytes(b'other weights')
    other = demo.trained_stamp(cfg, str(sam))
    assert other['sam'] != stamp['sam'] and other['config'] == stamp['config']
    assert not demo.reuse_trained(str(work), other)
    assert not (work / 'epoch_12.pth').exists() and not (work / 'last_checkpoint').exists()
    # another config
    cfg.train_cfg.max_epochs = 3
    assert demo.trained_stamp(cfg, str(sam))['config'] != other['config']
    assert not demo.reuse_trained(str(tmp_path / 'missing'), other)


def test_demo_evaluation_configs_carry_no_control(tmp_path):
    """Every run of the demo's evaluation gets its mode, shots and bank, and no control, even
    from a config that carries one (the demo derives its controls from the right run)."""
    demo = load_tool('tools/demo.py')
    world = str(tmp_path / 'world')
    cfg = demo.point_config(Config.fromfile(demo.CONFIG), world, str(tmp_path / 'work'), None)
    cfg.test_dataloader.dataset.ref_control = 'cyclic'
    assert evaluation_switches(cfg) == {'control': 'cyclic'}
    banks = {c: str(tmp_path / f'bank_{c}.pth') for c, _ in demo.REFERENCE_CHOICES}
    runs = demo.eval_runs(world)
    singles = [f'open_{c}_shot{i}' for c in ('default', 'refs_seed42') for i in range(1, 5)]
    assert [r[0] for r in runs] == ['oracle', 'open_default_1shot', 'open_default_5shot',
                                    *singles[:4], 'open_refs_seed42_1shot',
                                    'open_refs_seed42_5shot', *singles[4:]]
    for run in runs:
        name, mode, choice, ref_set, k, controls, shot = run
        cfg_m = demo.run_config(cfg, run, banks, 'ckpt.pth', str(tmp_path / 'eval'))
        # a single shot of the draw is named as the switch it is, never a control
        assert evaluation_switches(cfg_m) == ({} if shot is None else {'shot': str(shot)})
        ds = cfg_m.test_dataloader.dataset
        assert (ds.mode, ds.shots, cfg_m.model.reference_store.bank) == (mode, k, banks[choice])
        assert ds.shot_index == shot and (shot is None or (k, controls) == (1, ()))
        # the run's record is stamped with its config: a run after training and one that
        # reused the trained model must stamp alike, or a later make demo evaluates again
        reused = Config(copy.deepcopy(cfg.to_dict()))
        reused.resume = not cfg.get('resume', False)
        assert demo.run_config(reused, run, banks, 'ckpt.pth', str(tmp_path / 'eval')
                               ).pretty_text == cfg_m.pretty_text
        assert cfg_m.test_evaluator.derived_controls == list(controls)
        assert cfg_m.model.get('with_mask', True) == (name in demo.WITH_MASKS)
        if ref_set:
            assert ds.ref_set_file == osp.join(world, 'refs', 'refs_seed42.json')
    assert cfg.test_dataloader.dataset.ref_control == 'cyclic'  # the caller's config kept
    # the training-free matcher's config (no training data) is pointed at the world too
    matcher = demo.point_config(Config.fromfile(demo.MATCHER_CONFIG), world, 'w', None)
    assert matcher.test_evaluator.ann_file == world + '/annotations/instances_val.json'
