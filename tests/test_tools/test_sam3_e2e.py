"""SAM 3 exemplar prompting through tools/test.py on the toy world (tiny random SAM 3)."""
import os.path as osp
import pickle

import pytest

from helpers import PY, REPO
from helpers import log_metrics as metrics
from helpers import run_tool as run
from mmsamantics.models.sam3 import write_tiny_bpe

CONFIG = osp.join(REPO, 'configs', 'sam3_toy.py')


@pytest.mark.e2e
def test_sam3_test_tool(toy_root, tmp_path):
    ann = osp.join(toy_root, 'annotations')
    out = tmp_path / 'preds.pkl'
    rc, log = run([
        PY, 'tools/test.py', CONFIG, '--work-dir', str(tmp_path), '--mode', 'open',
        '--out', str(out), '--cfg-options',
        f'test_dataloader.dataset.data_root={toy_root.rstrip("/")}/',
        f'test_evaluator.ann_file={ann}/instances_val.json',
        f'test_evaluator.class_splits_file={ann}/splits.json',
        f'model.bpe_path={write_tiny_bpe(str(tmp_path / "bpe.txt.gz"))}',
        'test_dataloader.dataset.shots=2', 'randomness.seed=0'])
    assert rc == 0, log[-3000:]
    # fixed-seed values: the random tiny SAM 3's detections match no toy object (every AP and
    # AR of all / base / novel classes 0, -1 for the large objects the toy world lacks)
    m = metrics(log)
    assert len(m) == 42 and 'coco/novel_segm_AR@100' in m
    assert {v for k, v in m.items() if not k.endswith('_l')} == {0.0}
    assert {v for k, v in m.items() if k.endswith('_l')} == {-1.0}
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 8  # every toy image has detections, on the image
    for p in preds:
        inst = p['pred_instances']
        h, w = p['ori_shape']
        assert 0 < len(inst['labels']) == len(inst['masks']) <= 100
        assert (inst['bboxes'][:, 2] <= w).all() and (inst['bboxes'][:, 3] <= h).all()
