"""SAMIC through the tools on the toy world: a short training, then tools/test.py prints the
episode mIoU (FewShotSegMetric) and COCO box/mask AP (InContextCocoMetric)."""
import math
import os.path as osp
import re

import pytest

from helpers import PY, REPO, run_tool, step_options

CONFIG = osp.join(REPO, 'configs', 'samic_toy.py')


def options(root: str, **extra) -> list:
    root = root.rstrip('/') + '/'
    ann, splits = root + 'annotations/instances_val.json', root + 'annotations/splits.json'
    opts = {f'{d}_dataloader.dataset.data_root': root for d in ('train', 'val', 'test')}
    for ev in ('val_evaluator', 'test_evaluator'):
        for i in (0, 1):
            opts[f'{ev}.{i}.ann_file'] = ann
            opts[f'{ev}.{i}.class_splits_file'] = splits
    opts.update({'model.backbone.checkpoint': None,  # random tiny SAM
                 'model.mask_head.decoder.checkpoint': None,
                 'default_hooks.logger.interval': 1,
                 # small and quick: 64 px prompter input, 8 training and 4 test images
                 'model.prompter.input_size': 64,
                 'train_dataloader.dataset.indices': 8}, **extra)
    for d in ('train', 'val', 'test'):  # the training run validates after its last epoch
        opts.update(step_options(CONFIG, f'{d}_dataloader', 'GenerateSaliencyHeatmaps', size=64))
    for d in ('val', 'test'):
        opts[f'{d}_dataloader.dataset.indices'] = 4
    return ['--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]


def run(args):
    return run_tool([PY, *args])


def metrics(log: str, phase: str) -> dict:
    """The metrics of the last ``Epoch(phase)`` line with the episode mIoU."""
    line = [ln for ln in log.splitlines() if f'Epoch({phase})' in ln and 'fss/mIoU' in ln][-1]
    return {k: float(v) for k, v in re.findall(r'(\S+/\S+): (-?[\d.]+)', line)}


@pytest.mark.e2e
def test_train_then_test_prints_miou_and_ap(toy_root, tmp_path):
    wd = str(tmp_path / 'wd')
    rc, log = run(['tools/train.py', CONFIG, '--work-dir', wd,
                   *options(toy_root, **{'train_cfg.max_epochs': 1})])
    assert rc == 0, log[-3000:]
    losses = [float(v) for v in re.findall(r'Epoch\(train\).* loss: (\S+)', log)]
    assert losses and all(math.isfinite(v) for v in losses), losses  # logged, finite
    val = metrics(log, 'val')  # the training run validates epoch_1.pth after its last epoch
    ckpt = osp.join(wd, 'epoch_1.pth')
    assert osp.isfile(ckpt)
    rc, log = run(['tools/test.py', CONFIG, ckpt, '--work-dir', wd + '/test',
                   *options(toy_root)])
    assert rc == 0, log[-3000:]
    m = metrics(log, 'test')
    keys = ('fss/mIoU', 'fss/FB-IoU', 'fss/heatmap_mIoU', 'fss/base_mIoU', 'fss/novel_mIoU',
            'coco/bbox_mAP', 'coco/segm_mAP', 'coco/novel_segm_mAP')
    # tools/test.py on the checkpoint = the training run's validation of the same weights
    # (test_dataloader and test_evaluator are the val ones)
    assert {k: m[k] for k in keys} == {k: val[k] for k in keys}
