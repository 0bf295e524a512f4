"""PerSAM through tools/test.py on the toy world (random tiny SAM, fixed seed)."""
import os.path as osp

import pytest

from helpers import PY, REPO
from helpers import log_metrics as metrics
from helpers import run_tool as run

CONFIG = osp.join(REPO, 'configs', 'persam_toy.py')


@pytest.mark.e2e
def test_persam_test_tool(toy_root, tmp_path):
    root = toy_root.rstrip('/') + '/'
    opts = {'test_dataloader.dataset.data_root': root,
            'test_evaluator.ann_file': root + 'annotations/instances_val.json',
            'test_evaluator.class_splits_file': root + 'annotations/splits.json',
            'model.backbone.checkpoint': None, 'model.mask_head.decoder.checkpoint': None,
            # a random SAM's logits lie around -0.02; its peaks are all kept
            'model.mask_head.mask_threshold': -0.05, 'model.test_cfg.score_thr': -1.0,
            'model.test_cfg.max_instances': 2, 'randomness.seed': 0}
    out = tmp_path / 'preds.pkl'
    rc, log = run([PY, 'tools/test.py', CONFIG, '--work-dir', str(tmp_path), '--mode', 'open',
                   '--out', str(out), '--cfg-options', *[f'{k}={v}' for k, v in opts.items()]])
    assert rc == 0, log[-3000:]
    m = metrics(log)
    # fixed-seed values: the random tiny SAM's masks match no toy object (every AP and AR
    # 0, -1 for the large objects the toy world lacks), but there are masks for every image
    for key in ('bbox_mAP', 'bbox_AR@100', 'segm_mAP', 'segm_AR@100', 'base_bbox_mAP',
                'novel_segm_AR@100', 'bbox_mAP_l'):
        assert m[f'coco/{key}'] == (-1.0 if key.endswith('_l') else 0.0), key
    import pickle
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 8
    for p in preds:
        inst = p['pred_instances']
        assert 0 < len(inst['labels']) <= 2 * 12 and len(inst['masks']) == len(inst['labels'])
