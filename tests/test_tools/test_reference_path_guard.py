"""The reference path is used: a trained toy InSAM-DETR scores clearly lower when every class
is given another class's references (the ``shuffled`` control), in open mode.

The fixture is the ``make demo`` detector (``configs/insam_detr_toy_regions.py``: region
tokens, reference-aware head, trained 12 epochs on the toy world's base classes), stripped to
its weights in float16 by ``python tools/misc/publish_model.py work_dirs/demo/epoch_12.pth
tests/fixtures/insam_detr_toy_regions.pth --fp16``. It holds the frozen toy SAM too, so no
other checkpoint is read. The targets are toy-world images it never saw in training (the
validation images of a world of the same generator and seed).
"""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from helpers import REPO, toy_overrides
from mmsamantics.datasets import make_toy_world

CONFIG = osp.join(REPO, 'configs', 'insam_detr_toy_regions.py')


@pytest.mark.e2e
def test_shuffled_references_score_clearly_lower(tmp_path):
    fixture = glob.glob(osp.join(REPO, 'tests', 'fixtures', 'insam_detr_toy_regions-*.pth'))
    assert len(fixture) == 1, fixture
    root = str(tmp_path / 'world')
    make_toy_world(root, seed=0, num_train=48, num_val=16)
    ap = {}
    for control in (None, 'shuffled'):
        cfg = Config.fromfile(CONFIG)
        cfg.merge_from_dict(toy_overrides(root))
        cfg.test_dataloader.dataset.mode = 'open'
        cfg.test_dataloader.dataset.ref_control = control
        cfg.load_from = fixture[0]
        cfg.work_dir = str(tmp_path / f'run_{control}')
        cfg.experiment_name = f'guard_{control}'
        ap[control] = Runner.from_cfg(cfg).test()['coco/base_bbox_mAP_50']
    # the normal run must beat the shuffled one by a fifth of its AP (100 val images:
    # 0.365 -> 0.233); a detector that ignores its references scores the same in both
    assert ap[None] > 0.2 and ap['shuffled'] < 0.8 * ap[None], ap
