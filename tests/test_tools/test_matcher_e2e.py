"""The training-free matcher through tools/test.py and tools/dist_test.sh on the toy world."""
import os.path as osp

from helpers import REPO
from test_tools_e2e import PY, metrics, run

CONFIG = osp.join(REPO, 'configs', 'matcher_toy.py')


def options(root: str, **extra) -> list:
    root = root.rstrip('/') + '/'
    opts = {
        'test_dataloader.dataset.data_root': root,
        'test_evaluator.ann_file': root + 'annotations/instances_val.json',
        'test_evaluator.class_splits_file': root + 'annotations/splits.json',
        'model.backbone.checkpoint': None, 'model.mask_head.decoder.checkpoint': None,
        'model.proposal_generator.points_per_side': 6,
        'model.proposal_generator.pred_iou_thresh': -10.0,
        'model.proposal_generator.stability_score_thresh': -1.0,
        'randomness.seed': 0,  # the same random tiny SAM in every process
        'test_dataloader.batch_size': 1, **extra}
    return ['--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]


def test_matcher_test_tool_single_and_two_processes(toy_root, tmp_path):
    rc, single = run([PY, 'tools/test.py', CONFIG, '--work-dir', str(tmp_path / 's'),
                      '--mode', 'open', *options(toy_root)])
    assert rc == 0, single[-3000:]
    m = metrics(single)
    for key in ('bbox_mAP', 'bbox_AR@100', 'segm_mAP', 'segm_AR@100', 'base_bbox_mAP',
                'novel_segm_AR@100'):
        assert 0.0 <= m[f'coco/{key}'] <= 1.0, key
    rc, dist = run(['bash', 'tools/dist_test.sh', CONFIG, '2', '--work-dir', str(tmp_path / 'd'),
                    '--mode', 'open', *options(toy_root)], env=dict(PORT='29521', PYTHON=PY))
    assert rc == 0, dist[-3000:]
    assert metrics(dist) == m
