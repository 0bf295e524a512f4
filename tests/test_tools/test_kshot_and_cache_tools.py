"""The k-shot sweep, the reference bank through tools/test.py, and training from the cache."""
import glob
import json
import os.path as osp

import numpy as np
import pytest
import torch

from helpers import PY, REPO, TOY_CONFIG, cli_options, step_options, toy_cfg
from helpers import run_tool as run

CACHED_CONFIG = osp.join(REPO, 'configs', 'insam_detr',
                         'insam-detr_sam-tiny_1xb4-12e_toy-world_cached.py')


@pytest.fixture(scope='module')
def weights(toy_root, tmp_path_factory):
    """A SAM file in the official layout + a full detector checkpoint (both random)."""
    from mmengine.runner import save_checkpoint

    from mmdet.registry import MODELS
    d = tmp_path_factory.mktemp('weights')
    torch.manual_seed(0)
    model = MODELS.build(toy_cfg(toy_root).model)
    model.init_weights()
    sam = {f'image_encoder.{k}': v for k, v in model.backbone.encoder.state_dict().items()}
    dec = model.mask_head.decoder
    sam.update({f'prompt_encoder.{k}': v for k, v in dec.prompt_encoder.state_dict().items()})
    sam.update({f'mask_decoder.{k}': v for k, v in dec.mask_decoder.state_dict().items()})
    torch.save(sam, d / 'sam.pth')
    save_checkpoint({'state_dict': model.state_dict(), 'meta': {}}, str(d / 'model.pth'))
    return str(d / 'sam.pth'), str(d / 'model.pth')


def opts(toy_root, sam, **extra):
    o = cli_options(toy_root, **extra)
    o[o.index('model.backbone.checkpoint=None')] = f'model.backbone.checkpoint={sam}'
    o[o.index('model.mask_head.decoder.checkpoint=None')] = \
        f'model.mask_head.decoder.checkpoint={sam}'
    return o


def cache_opts(cache):
    """The cached pipeline's two loaders read ``cache`` (steps found by type)."""
    opts = {}
    for step in ('LoadCachedSAMFeatures', 'LoadCachedReferenceTokens'):
        opts.update(step_options(CACHED_CONFIG, 'train_dataloader', step, cache_dir=cache))
    return opts


@pytest.mark.e2e
def test_kshot_sweep_bank_and_test_tool(toy_root, weights, tmp_path):
    sam, ckpt = weights
    refs = tmp_path / 'refs'
    rc, log = run([PY, 'tools/misc/make_reference_sets.py',
                   osp.join(toy_root, 'annotations/instances_train.json'), '--out-dir',
                   str(refs), '--seeds', '42', '123', '--max-shots', '2', '--min-area', '256',
                   '--border', '4'])
    assert rc == 0, log[-2000:]
    work = tmp_path / 'kshot'
    rc, log = run([PY, 'tools/analysis/kshot_eval.py', TOY_CONFIG, ckpt, '--ref-dir', str(refs),
                   '--seeds', '42', '123', '--shots', '1', '--modes', 'oracle', '--work-dir',
                   str(work), '--ref-controls', 'shuffled', *opts(toy_root, sam)], timeout=600)
    assert rc == 0, log[-3000:]
    with open(work / 'kshot_summary.json') as f:
        summary = json.load(f)
    # the control ran for real, was announced, recorded and dumped under its own name
    assert '[control] cyclic' in log and 'oracle_cyclic/1-shot' in summary
    with open(work / 'metrics' / 'seed42_1shot_oracle_cyclic.json') as f:
        ctrl = json.load(f)
    assert ctrl['ref_control'] == 'cyclic'
    assert ctrl['metrics']['coco/reference_control'] == 'cyclic'
    stem = osp.splitext(osp.basename(TOY_CONFIG))[0]
    assert [osp.basename(p) for p in glob.glob(
        str(work / 'runs' / 'seed42_1shot_oracle_cyclic' / '*.py'))] == [
            f'{stem}.control-cyclic.py']
    assert any(k.startswith('coco/bbox_mAP_50/') for k in ctrl['metrics'])  # per class
    assert set(summary['controls']['oracle/1-shot']) == {'right', 'cyclic'}
    row = summary['oracle/1-shot']
    assert row['bbox_mAP'][2] == 2  # two seeds averaged
    # mean and sample std of the two runs' own metric files
    runs = []
    for seed in (42, 123):
        with open(work / 'metrics' / f'seed{seed}_1shot_oracle.json') as f:
            runs.append({n.split('/')[-1]: v for n, v in json.load(f)['metrics'].items()
                         if n.count('/') == 1})
    for k in ('base_bbox_mAP', 'novel_bbox_mAP', 'base_segm_mAP', 'novel_segm_mAP'):
        vals = np.array([r[k] for r in runs])
        assert row[k][:2] == pytest.approx([vals.mean(), vals.std(ddof=1)], abs=1e-9), k
    assert osp.isfile(work / 'banks' / 'bank_seed42_1shot.pth')
    # the same run through tools/test.py with the bank = the sweep's metrics for seed 42
    out = tmp_path / 'm.json'
    rc, log = run([PY, 'tools/test.py', TOY_CONFIG, ckpt, '--ref-set',
                   str(refs / 'refs_seed42.json'), '--shots', '1', '--ref-bank',
                   str(work / 'banks' / 'bank_seed42_1shot.pth'), '--metrics-out', str(out),
                   '--work-dir', str(tmp_path / 't'), *opts(toy_root, sam)])
    assert rc == 0, log[-3000:]
    with open(out) as f:
        single = json.load(f)
    with open(work / 'metrics' / 'seed42_1shot_oracle.json') as f:
        sweep = json.load(f)['metrics']  # with per-class values too (the sweep had controls)
    assert {k: sweep[k] for k in single} == single and len(sweep) > len(single)
    # a resumed sweep recomputes nothing and re-summarises
    rc, log = run([PY, 'tools/analysis/kshot_eval.py', TOY_CONFIG, ckpt, '--ref-dir', str(refs),
                   '--seeds', '42', '123', '--shots', '1', '--modes', 'oracle', '--work-dir',
                   str(work), *opts(toy_root, sam)])
    assert rc == 0 and 'Epoch(test)' not in log and '| oracle | 1 | 42,123 |' in log
    rc, log = run([PY, 'tools/analysis/kshot_eval.py', TOY_CONFIG, ckpt, '--ref-dir',
                   str(tmp_path / 'none'), '--seeds', '7'])
    assert rc != 0 and 'make_reference_sets.py' in log and 'Traceback' not in log


@pytest.mark.e2e
def test_cache_tool_in_shards_then_train_from_cache(toy_root, weights, tmp_path):
    sam, _ = weights
    cache = str(tmp_path / 'cache')
    for shard in ('0', '1'):
        rc, log = run([PY, 'tools/misc/cache_embeddings.py', TOY_CONFIG, '--out', cache,
                       '--num-shards', '2', '--shard-id', shard, *opts(toy_root, sam)])
        assert rc == 0, log[-3000:]
    assert 'MiB per image' in log
    wd = str(tmp_path / 'train')
    rc, log = run([PY, 'tools/train.py', CACHED_CONFIG, '--work-dir', wd,
                   *opts(toy_root, sam, **cache_opts(cache))])
    assert rc == 0, log[-3000:]
    assert osp.isfile(osp.join(wd, 'epoch_1.pth')) and 'loss_cls' in log
    # a cache of other SAM weights is refused with a message, not used
    rc, log = run([PY, 'tools/train.py', CACHED_CONFIG, '--work-dir', wd + '2',
                   *cli_options(toy_root, **cache_opts(cache))])
    assert rc != 0 and 'another SAM or preprocessing' in log
