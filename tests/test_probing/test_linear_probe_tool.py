"""tools/analysis/linear_probe.py end to end on the toy data (tiny, 2 epochs): the table's
top-1/top-5 equal a numpy recomputation from the trained head and the cached features."""
import ast
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch

from helpers import PROBE_CONFIGS, REPO, TOY_PROBES, load_tool, numpy_topk

LINEAR_PROBE = 'tools/analysis/linear_probe.py'


@pytest.fixture(scope='module')
def toy_run(toy_cls_root, tmp_path_factory):
    wd = str(tmp_path_factory.mktemp('linear_probe'))
    root = toy_cls_root + '/'
    load_tool(LINEAR_PROBE).main([
        *TOY_PROBES.values(), '--cache', '--work-dir', wd, '--cfg-options',
        'train_cfg.max_epochs=2', 'default_hooks.checkpoint.interval=2',
        f'train_dataloader.dataset.data_root={root}', f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}'])
    with open(osp.join(wd, 'probe_results.json')) as f:
        return wd, json.load(f)


@pytest.mark.e2e  # toy_run: the tool trains five probes
def test_writes_table_json_and_png(toy_run):
    wd, results = toy_run
    assert [r['family'] for r in results] == ['SAM', 'SAM 2', 'SAM 3', 'CLIP', 'DINOv2']
    assert [r['feature_dim'] for r in results] == [64, 64, 32, 32, 96]
    table = open(osp.join(wd, 'probe_results.md')).read()
    assert all(r['name'] in table for r in results) and '11.06 / 25.37' in table
    # SAM 3 is newer than the paper: no published number beside it
    assert '| linear-probe_sam3-tiny_1xb16-10e_toy-cls | SAM 3 |' in table
    sam3_row = next(ln for ln in table.splitlines() if '| SAM 3 |' in ln)
    assert sam3_row.endswith('| - |')
    with open(osp.join(wd, 'probe_curves.png'), 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


@pytest.mark.e2e
def test_reported_accuracy_equals_numpy_on_the_trained_head(toy_run):
    wd, results = toy_run
    for r in results:
        run = osp.join(wd, r['name'])
        state = torch.load(osp.join(run, 'epoch_2.pth'), map_location='cpu',
                           weights_only=True)['state_dict']
        w, b = state['head.fc.weight'].numpy(), state['head.fc.bias'].numpy()
        with np.load(osp.join(run, 'feature_cache', 'val.npz')) as z:
            x, y = z['features'], z['labels']
        logits = x.astype(np.float64) @ w.T.astype(np.float64) + b
        assert r['top1'] == pytest.approx(numpy_topk(logits, y, 1), abs=1e-3), r['name']
        assert r['top5'] == pytest.approx(numpy_topk(logits, y, 5), abs=1e-3), r['name']


@pytest.mark.e2e
def test_toy_data_option_makes_the_data_set(tmp_path):
    wd, data = str(tmp_path / 'wd'), str(tmp_path / 'toy')
    load_tool(LINEAR_PROBE).main([TOY_PROBES['dinov2-tiny'], '--toy-data', data,
                                  '--work-dir', wd, '--cfg-options', 'train_cfg.max_epochs=1'])
    assert osp.isdir(osp.join(data, 'train', 'red_star'))
    assert json.load(open(osp.join(wd, 'probe_results.json')))[0]['epochs'] == 1


@pytest.mark.e2e
def test_missing_weights_and_data_stop_with_one_message(tmp_path):
    cfg = osp.join(PROBE_CONFIGS, 'linear-probe_sam-vit-b_1xb128-10e_in1k.py')
    with pytest.raises(SystemExit) as e:
        load_tool(LINEAR_PROBE).main([cfg, '--work-dir', str(tmp_path), '--cfg-options',
                                      'model.backbone.checkpoint=nope/sam_vit_b_01ec64.pth',
                                      'train_dataloader.dataset.data_root=nope/imagenet/'])
    msg = str(e.value)
    assert 'nope/sam_vit_b_01ec64.pth' in msg and 'dl.fbaipublicfiles.com' in msg
    assert "'nope/imagenet/train' not found" in msg and 'data/imagenet/' in msg
    cfg = osp.join(PROBE_CONFIGS, 'linear-probe_sam3-pe_1xb128-10e_in1k.py')
    with pytest.raises(SystemExit, match=r"'nope/sam3.pt'.*huggingface.co/facebook/sam3"):
        load_tool(LINEAR_PROBE).main([cfg, '--work-dir', str(tmp_path), '--cfg-options',
                                      'model.backbone.checkpoint=nope/sam3.pt'])


def test_nothing_outside_probing_imports_it():
    # `import mmsamantics` must not pull in the mmpretrain side: only configs
    # (custom_imports) and the probe tools import mmsamantics.probing
    pkg = osp.join(REPO, 'mmsamantics')
    offenders = []
    for root, _, files in os.walk(pkg):
        if osp.relpath(root, pkg).split(os.sep)[0] == 'probing':
            continue
        for name in files:
            if name.endswith('.py'):
                path = osp.join(root, name)
                tree = ast.parse(open(path).read())
                for node in ast.walk(tree):
                    mods = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                            [node.module or ''] if isinstance(node, ast.ImportFrom) else [])
                    if any('probing' in m for m in mods) or (
                            isinstance(node, ast.ImportFrom) and
                            any(a.name == 'probing' for a in node.names)):
                        offenders.append(osp.relpath(path, REPO))
    assert not offenders, f'modules importing mmsamantics.probing: {offenders}'


@pytest.mark.e2e
@pytest.mark.skipif(torch.cuda.is_available(), reason='fp16 AMP is allowed on a GPU')
def test_amp_on_without_gpu_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match='needs a CUDA GPU'):
        load_tool(LINEAR_PROBE).main([TOY_PROBES['dinov2-tiny'], '--amp', 'on',
                                      '--work-dir', str(tmp_path)])
