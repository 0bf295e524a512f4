"""Helpers for tests: the toy config pointed at a test toy world."""
import os.path as osp
from typing import List

from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOY_CONFIG = osp.join(REPO, 'configs', 'insam_detr_toy.py')


def toy_overrides(root: str, epochs: int = 1) -> dict:
    """cfg-options that point the toy config at ``root`` and shorten the schedule."""
    root = root.rstrip('/') + '/'
    return {
        'train_dataloader.dataset.data_root': root,
        'val_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.data_root': root,
        'val_evaluator.ann_file': root + 'annotations/instances_val.json',
        'test_evaluator.ann_file': root + 'annotations/instances_val.json',
        'val_evaluator.class_splits_file': root + 'annotations/splits.json',
        'test_evaluator.class_splits_file': root + 'annotations/splits.json',
        # random tiny SAM: the tests need no pretraining run
        'model.backbone.checkpoint': None,
        'model.mask_head.decoder.checkpoint': None,
        'train_cfg.max_epochs': epochs,
        'train_cfg.val_interval': epochs,
        'default_hooks.logger.interval': 1,
    }


def toy_cfg(root: str, epochs: int = 1) -> Config:
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.merge_from_dict(toy_overrides(root, epochs))
    return cfg


def cli_options(root: str, epochs: int = 1, **extra) -> List[str]:
    """``--cfg-options`` arguments for the tools."""
    opts = dict(toy_overrides(root, epochs), **extra)
    return ['--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]


MATCHER_CONFIG = osp.join(REPO, 'configs', 'matcher_toy.py')


def matcher_cfg(root: str, **extra) -> Config:
    """The training-free matcher's toy config on ``root`` with a random tiny SAM that keeps
    every grid proposal (a random SAM's IoU head is uncalibrated)."""
    cfg = Config.fromfile(MATCHER_CONFIG)
    root = root.rstrip('/') + '/'
    cfg.merge_from_dict({
        'test_dataloader.dataset.data_root': root,
        'test_evaluator.ann_file': root + 'annotations/instances_val.json',
        'test_evaluator.class_splits_file': root + 'annotations/splits.json',
        'model.backbone.checkpoint': None,
        'model.mask_head.decoder.checkpoint': None,
        'model.proposal_generator.points_per_side': 6,
        'model.proposal_generator.pred_iou_thresh': -10.0,
        'model.proposal_generator.stability_score_thresh': -1.0,
        **extra})
    return cfg
