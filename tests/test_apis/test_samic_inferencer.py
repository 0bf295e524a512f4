"""InContextInferencer with SAMIC and PerSAM: the same predictions as their test pipelines."""
import numpy as np
import pytest
import torch
from mmengine.config import Config

from helpers import (REPO, assert_same_predictions, inferencer_vs_pipeline, persam_cfg,
                     train_refs, val_images)
from mmsamantics.apis import InContextInferencer


def samic_cfg(root: str) -> Config:
    cfg = Config.fromfile(f'{REPO}/configs/samic_toy.py')
    cfg.test_dataloader.dataset.data_root = root + '/'
    cfg.model.backbone.checkpoint = None
    cfg.model.mask_head.decoder.checkpoint = None
    # a random prompter: peaks wherever its heatmap exceeds the mean
    cfg.model.test_cfg.update(peak_thr=0.0, min_region_area=0)
    return cfg


def test_samic_inferencer_equals_model_predict(toy_root):
    torch.manual_seed(0)
    inf = InContextInferencer(samic_cfg(toy_root), None, device='cpu')
    # the detector's own pipeline without target annotations: reference heatmaps only
    steps = [dict(t) for t in inf.cfg.test_dataloader.dataset.pipeline
             if t['type'] != 'LoadAnnotations']
    for t in steps:
        if t['type'] == 'GenerateSaliencyHeatmaps':
            t['with_gt'] = False
    res, pred = inferencer_vs_pipeline(inf, val_images(toy_root)[0], train_refs(toy_root)[0],
                                       steps)
    assert_same_predictions(inf, res, pred)
    with pytest.raises(ValueError, match='outside'):  # a reference box outside its image
        inf.add_reference(np.zeros((32, 32, 3), np.uint8), 'x', box=[40, 40, 60, 60])


def test_persam_inferencer_equals_model_predict(toy_root):
    torch.manual_seed(0)
    inf = InContextInferencer(persam_cfg(toy_root), None, device='cpu')
    res, pred = inferencer_vs_pipeline(inf, val_images(toy_root)[0], train_refs(toy_root)[0])
    assert_same_predictions(inf, res, pred)
