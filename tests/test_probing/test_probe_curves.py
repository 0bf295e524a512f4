"""The curve reader and tools/analysis/plot_probe_curves.py on synthetic mmengine logs."""
import json
import os

import numpy as np
import pytest

from helpers import load_tool
from mmsamantics.probing import find_scalars, read_scalars

PLOT_TOOL = 'tools/analysis/plot_probe_curves.py'


def _fake_run(root, losses, top1, iters_per_epoch=2):
    vis = os.path.join(root, '20260101_000000', 'vis_data')
    os.makedirs(vis)
    with open(os.path.join(vis, 'scalars.json'), 'w') as f:
        for i, loss in enumerate(losses, 1):
            f.write(json.dumps(dict(lr=1e-3, loss=loss, epoch=(i - 1) // iters_per_epoch + 1,
                                    iter=i, step=i)) + '\n')
            if i % iters_per_epoch == 0:
                e = i // iters_per_epoch
                f.write(json.dumps({'accuracy/top1': top1[e - 1],
                                    'accuracy/top5': top1[e - 1] + 10, 'step': e}) + '\n')
    return root


def test_read_scalars(tmp_path):
    run = _fake_run(str(tmp_path / 'a'), [2.5, 2.4, 2.2, 2.0], [10.0, 20.0])
    s = read_scalars(run)
    np.testing.assert_allclose(s['train']['loss'], [2.5, 2.4, 2.2, 2.0])
    np.testing.assert_allclose(s['train']['epoch'], [0.5, 1.0, 1.5, 2.0])
    np.testing.assert_allclose(s['val']['epoch'], [1, 2])
    np.testing.assert_allclose(s['val']['top1'], [10, 20])
    np.testing.assert_allclose(s['val']['top5'], [20, 30])
    assert find_scalars(run).endswith('vis_data/scalars.json')


@pytest.mark.e2e
def test_plot_tool_writes_png(tmp_path):
    a = _fake_run(str(tmp_path / 'sam'), [2.5, 2.4, 2.3, 2.3], [10.0, 11.0])
    b = _fake_run(str(tmp_path / 'dinov2'), [2.5, 1.5, 0.9, 0.5], [70.0, 77.0])
    out = str(tmp_path / 'fig' / 'curves.png')
    load_tool(PLOT_TOOL).main([a, b, '--labels', 'SAM', 'DINOv2', '--out', out])
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert os.path.getsize(out) > 10_000


@pytest.mark.e2e
def test_plot_tool_errors(tmp_path):
    with pytest.raises(SystemExit, match='neither a scalars.json nor a run directory'):
        load_tool(PLOT_TOOL).main([str(tmp_path / 'missing'), '--out', str(tmp_path / 'x.png')])
    with pytest.raises(SystemExit, match='no \\*/vis_data/scalars.json'):
        load_tool(PLOT_TOOL).main([str(tmp_path), '--out', str(tmp_path / 'x.png')])
    with pytest.raises(SystemExit, match='2 labels for 1 runs'):
        load_tool(PLOT_TOOL).main([str(tmp_path), '--labels', 'a', 'b'])
