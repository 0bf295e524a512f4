"""The worked example of docs/extending.md, used as a downstream user would: a package in
its own folder outside the repository (a copy of projects/box_prototype), registered through
the config's custom_imports, its config inheriting ours as ``mmsamantics::`` bases, trained
one iteration on the toy world by ``mmsam train`` and run by ``mmsam infer`` there."""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch

from helpers import REPO, toy_cfg, write_train_refs

PROJECT = osp.join(REPO, 'projects', 'box_prototype')
CONFIG = osp.join(PROJECT, 'configs', 'box-prototype_sam-tiny_1xb4-400i_toy-world.py')


def _options(root: str, work_dir: str) -> list:
    root = root.rstrip('/') + '/'
    return [f'{k}={v}' for k, v in {
        'train_dataloader.dataset.data_root': root,
        'val_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.data_root': root,
        'val_evaluator.ann_file': root + 'annotations/instances_val.json',
        'val_evaluator.class_splits_file': root + 'annotations/splits.json',
        'test_evaluator.ann_file': root + 'annotations/instances_val.json',
        'test_evaluator.class_splits_file': root + 'annotations/splits.json',
        'model.backbone.checkpoint': None,  # a random tiny SAM: no pretraining run
        'model.mask_head.decoder.checkpoint': None,
        'train_cfg.max_iters': 1, 'train_cfg.val_interval': 1,
        'default_hooks.checkpoint.interval': 1, 'default_hooks.logger.interval': 1,
        'work_dir': work_dir}.items()]


def _run(args: list, cwd: str, project: str) -> str:
    """``python -m mmsamantics ARGS`` (the ``mmsam`` command) in ``cwd`` with ``project`` on
    the path."""
    env = dict(os.environ, PYTHONPATH=project, OMP_NUM_THREADS='1')
    p = subprocess.run([sys.executable, '-m', 'mmsamantics'] + args, cwd=cwd,
                       capture_output=True, text=True, timeout=600, env=env)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p.stdout + p.stderr


@pytest.mark.e2e
def test_a_downstream_detector_trains_and_infers(toy_root, tmp_path):
    project = str(tmp_path / 'box_prototype')
    shutil.copytree(PROJECT, project, ignore=shutil.ignore_patterns('__pycache__'))
    config = osp.join(project, 'configs', osp.basename(CONFIG))
    work = str(tmp_path / 'work')
    opts = _options(toy_root, work)
    log = _run(['train', config, '--cfg-options', *opts], str(tmp_path), project)
    assert 'loss_cells' in log and 'coco/bbox_mAP' in log  # one step, then evaluated
    ckpt = osp.join(work, 'iter_1.pth')
    state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    assert {'proj.weight', 'log_scale'} <= set(state)
    ref_file = tmp_path / 'refs.json'
    anns = write_train_refs(toy_root, str(ref_file), num_classes=2, shots=1)
    out = tmp_path / 'infer'
    _run(['infer', config, ckpt, '--refs', str(ref_file),
          '--ref-img-dir', osp.join(toy_root, 'train'), '--img-dir', osp.join(toy_root, 'val'),
          '--out-dir', str(out), '--device', 'cpu', '--no-progress', '--score-thr', '0',
          '--cfg-options', *opts], str(tmp_path), project)
    results = json.loads((out / 'results.json').read_text())
    cats = {a['category_id'] for a in anns}
    n_val = len(os.listdir(osp.join(toy_root, 'val')))
    # one detection per queried class and image, each with a mask
    assert len(results) == len(cats) * n_val
    assert {r['category_id'] for r in results} == cats
    assert all('segmentation' in r for r in results)


def test_a_downstream_reference_source(toy_root):
    """BoxGeometryToken, registered by the project, adds one token to InSAM-DETR's
    references: the token-merge input grows by one without the config saying so, the
    signature names the source, and the token holds the box's log geometry."""
    sys.path.insert(0, PROJECT)
    try:
        import box_prototype  # noqa: F401  (registers the project's modules)
    finally:
        sys.path.remove(PROJECT)
    from mmdet.registry import MODELS
    cfg = toy_cfg(toy_root)
    cfg.model.reference_sources = [dict(type='SAMMaskTokens'), dict(type='BoxGeometryToken')]
    model = MODELS.build(cfg.model).eval()
    assert model.token_merge.num_tokens == 5 and model.reference_feature_shape == (5, 64)
    assert model.signature_parts()['reference_encoder'] == 'sam_tokens+box_geometry'
    boxes = torch.tensor([[10., 20., 74., 52.]])
    x = torch.zeros(1, 3, 256, 256)
    with torch.no_grad():
        tokens = model.reference_tokens_from(model.backbone(x), boxes)
    w, h = 64 / 256, 32 / 256
    want = torch.tensor([w, h, w / h]).log().repeat(22)[:64]
    assert tokens.shape == (1, 5, 64)
    torch.testing.assert_close(tokens[0, 4], want)
