"""The leaderboard summary (mean ± std over seeds, per method/mode/k) and its tool's
summary-only path on written run records."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch

from helpers import REPO, load_tool
from mmsamantics.analysis.leaderboard import (leaderboard_markdown, parameter_counts,
                                              summarize_leaderboard)


def record(method, seed, mode='oracle', shots=1, box=0.1, novel=0.05, seconds=2.0,
           control=None):
    metrics = {'coco/bbox_mAP': box, 'coco/bbox_mAP_50': 2 * box, 'coco/bbox_AR@100': 0.3,
               'coco/segm_mAP': box / 2, 'coco/novel_bbox_mAP': novel,
               'coco/base_bbox_mAP': -1.0,  # -1: COCO's "no such objects"
               'coco/bbox_mAP_50/red circle': 2 * box, 'coco/novel_bbox_mAP_50': 2 * novel}
    return dict(method=method, seed=seed, shots=shots, mode=mode, metrics=metrics, images=8,
                ref_control=control,
                seconds=seconds, peak_mem_mb=100.0 + seed, params_trainable=10,
                params_frozen=1000)


def test_summary_is_mean_and_std_over_seeds():
    recs = [record('b', 1, box=0.2, seconds=4.0), record('a', 2, box=0.1),
            record('b', 2, box=0.4), record('a', 1, mode='open', box=0.3)]
    out = summarize_leaderboard(recs)
    # methods in the order they first appear, then mode, then k
    assert list(out) == ['b | oracle | 1-shot', 'a | open | 1-shot', 'a | oracle | 1-shot']
    b = out['b | oracle | 1-shot']
    assert b['seeds'] == [1, 2]
    np.testing.assert_allclose(b['box AP'], [30.0, np.std([20, 40], ddof=1), 2])
    np.testing.assert_allclose(b['box AP50'][0], 60.0)
    np.testing.assert_allclose(b['images/s'], [3.0, np.std([2, 4], ddof=1), 2])
    np.testing.assert_allclose(b['peak MB'][:2], [101.5, np.std([101, 102], ddof=1)])
    assert b['base_box AP'][2] == 0  # -1 values are not averaged
    assert b['mask AR@100'][2] == 0  # absent metric
    assert out['a | oracle | 1-shot']['box AP'] == [10.0, 0.0, 1]
    table = leaderboard_markdown(out)
    assert '| b | oracle | 1 | 2 | 30.0 ± 14.1 | 60.0 ± 28.3 | 30.0 ± 0.0 |' in table
    assert '| a | open | 1 | 5.0 |' not in table and '| a | open | 1 | 1 | 30.0 |' in table
    assert '0.00M' in table and '–' in table


def test_parameter_counts():
    m = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    m[0].requires_grad_(False)
    assert parameter_counts(m) == (10, 16)


def test_tool_summarize_only(tmp_path, capsys):
    tool = load_tool('tools/analysis/leaderboard.py')
    cfg = osp.join(REPO, 'configs', 'persam_toy.py')
    runs = tmp_path / 'runs' / 'persam_toy'
    os.makedirs(runs)
    for seed in (42, 123):
        with open(runs / f'seed{seed}_1shot_oracle.json', 'w') as f:
            json.dump(record('persam_toy', seed, box=0.01 * seed / 42), f)
        with open(runs / f'seed{seed}_1shot_oracle_same-kind.json', 'w') as f:
            json.dump(record('persam_toy', seed, box=0.002, control='same-kind'), f)
    # the class splits come from --data-root (the config's own splits file is the toy
    # world's, which a clean checkout has not generated yet)
    os.makedirs(tmp_path / 'world' / 'annotations')
    with open(tmp_path / 'world' / 'annotations' / 'splits.json', 'w') as f:
        json.dump({'base': ['red circle'], 'novel': ['blue star']}, f)
    tool.main([cfg, '--summarize-only', '--work-dir', str(tmp_path),
               '--data-root', str(tmp_path / 'world')])
    out = capsys.readouterr().out
    assert '| persam_toy | oracle | 1 | 2 |' in out  # the control runs are not in it
    assert 'Reference controls of persam_toy' in out and '| same-kind |' in out
    with open(tmp_path / 'leaderboard.json') as f:
        ctrl = json.load(f)['controls']['persam_toy']['oracle/1-shot']
    # the right references (0.02, 0.0586 AP50 over two seeds) against 0.004
    right = np.mean([2 * 0.01, 2 * 0.01 * 123 / 42])  # AP50 of the two seeds' runs
    assert ctrl['same-kind']['all_drop'] == pytest.approx(1 - 0.004 / right)
    # red circle (base) is the one class with a per-class value: judged on it alone
    assert ctrl['same-kind']['base_class_wins'] == [1, 1] and ctrl['same-kind']['pass']
    for ext in ('md', 'json', 'png'):
        assert osp.getsize(tmp_path / f'leaderboard.{ext}') > 0
    with open(tmp_path / 'leaderboard.json') as f:
        assert json.load(f)['persam_toy | oracle | 1-shot']['seeds'] == [42, 123]
    with pytest.raises(SystemExit, match='--ref-dir is required'):
        tool.main([cfg, '--work-dir', str(tmp_path)])
    with pytest.raises(SystemExit, match='no reference sets for seeds'):
        tool.main([cfg, '--ref-dir', str(tmp_path), '--seeds', '7'])
    with pytest.raises(SystemExit, match='not found'):
        tool.main([cfg + ':missing.pth', '--summarize-only'])
