"""The training-free matcher through tools/test.py and tools/dist_test.sh on the toy world."""
import os.path as osp

import pytest

from helpers import PY, REPO, assert_same_dumped_predictions, dumped_predictions
from helpers import log_metrics as metrics
from helpers import run_tool as run

CONFIG = osp.join(REPO, 'configs', 'matcher_toy.py')


def options(root: str, **extra) -> list:
    root = root.rstrip('/') + '/'
    opts = {
        'test_dataloader.dataset.data_root': root,
        'test_evaluator.ann_file': root + 'annotations/instances_val.json',
        'test_evaluator.class_splits_file': root + 'annotations/splits.json',
        'model.backbone.checkpoint': None, 'model.mask_head.decoder.checkpoint': None,
        'model.feature_extractor.checkpoint': None,
        'model.proposal_generator.points_per_side': 6,
        'model.proposal_generator.pred_iou_thresh': -10.0,
        'model.proposal_generator.stability_score_thresh': -1.0,
        'randomness.seed': 0,  # the same random tiny SAM in every process
        'test_dataloader.batch_size': 1, **extra}
    return ['--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]


@pytest.mark.e2e
def test_matcher_test_tool_single_and_two_processes(toy_root, tmp_path):
    rc, single = run([PY, 'tools/test.py', CONFIG, '--work-dir', str(tmp_path / 's'),
                      '--out', str(tmp_path / 's.pkl'), '--mode', 'open', *options(toy_root)])
    assert rc == 0, single[-3000:]
    m = metrics(single)
    # fixed-seed values (randomness.seed=0): the random tiny SAM finds no toy object, so every
    # AP and AR is 0, and -1 for the large objects the toy world lacks
    for key in ('bbox_mAP', 'bbox_AR@100', 'segm_mAP', 'segm_AR@100', 'base_bbox_mAP',
                'novel_segm_AR@100', 'bbox_mAP_l'):
        assert m[f'coco/{key}'] == (-1.0 if key.endswith('_l') else 0.0), key
    rc, dist = run(['bash', 'tools/dist_test.sh', CONFIG, '2', '--work-dir', str(tmp_path / 'd'),
                    '--out', str(tmp_path / 'd.pkl'), '--mode', 'open', *options(toy_root)],
                   env=dict(PORT='29521', PYTHON=PY))
    assert rc == 0, dist[-3000:]
    assert metrics(dist) == m
    # the metrics are all 0 in both runs, so the comparison is of the predictions: every
    # image's, from both processes, gathered in the one file (and not empty)
    single_preds = dumped_predictions(str(tmp_path / 's.pkl'))
    assert len(single_preds) == 8 and all(len(p[1]) > 0 for p in single_preds.values())
    assert_same_dumped_predictions(dumped_predictions(str(tmp_path / 'd.pkl')), single_preds)
