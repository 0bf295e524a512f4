import pytest

from helpers import toy_cfg
from mmsamantics.engine import check_resources, missing_resources
from mmsamantics.utils import MissingResourceError


def test_complete_config_passes(toy_root):
    cfg = toy_cfg(toy_root)
    assert missing_resources(cfg, 'train') == [] and missing_resources(cfg, 'test') == []
    check_resources(cfg)


def test_every_missing_file_is_listed_with_a_hint(toy_root, tmp_path):
    cfg = toy_cfg(toy_root)
    cfg.model.backbone.checkpoint = str(tmp_path / 'sam_tiny_toy.pth')
    cfg.train_dataloader.dataset.data_root = str(tmp_path / 'nowhere') + '/'
    cfg.val_evaluator.class_splits_file = str(tmp_path / 'splits.json')
    with pytest.raises(MissingResourceError) as e:
        check_resources(cfg, 'train')
    msg = str(e.value)
    assert 'pretrain_toy_sam.py' in msg
    assert 'nowhere/annotations/instances_train.json' in msg and 'nowhere/train' in msg
    assert 'splits.json' in msg
    # the test phase does not need the training data
    cfg.model.backbone.checkpoint = None
    assert missing_resources(cfg, 'test') == []
