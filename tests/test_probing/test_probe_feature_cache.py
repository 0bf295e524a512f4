"""Training the head on cached features reproduces training on images; cache reuse and
errors."""
import copy
import logging
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

from helpers import toy_probe_cfg
from mmsamantics.probing import (CachedFeatureBackbone, build_feature_caches,
                                 load_feature_cache, read_scalars, run_linear_probe)
from mmsamantics.utils import MissingResourceError


def _head(work_dir: str, epochs: int = 2):
    ckpt = torch.load(osp.join(work_dir, f'epoch_{epochs}.pth'), map_location='cpu',
                      weights_only=True)
    return ckpt['state_dict']['head.fc.weight'], ckpt['state_dict']['head.fc.bias']


@pytest.mark.e2e  # two full linear-probe runs through mmengine's Runner
def test_cache_reproduces_training_on_images(toy_cls_root, tmp_path):
    cfg = toy_probe_cfg('sam-tiny', toy_cls_root, epochs=2)
    img = run_linear_probe(cfg, str(tmp_path / 'img'), cache=False, amp='off')
    cch = run_linear_probe(cfg, str(tmp_path / 'cache'), cache=True, amp='off')
    assert cch['feature_dim'] == img['feature_dim'] == 64
    assert cch['top1'] == pytest.approx(img['top1'], abs=1e-6)
    assert cch['top5'] == pytest.approx(img['top5'], abs=1e-6)
    li, lc = read_scalars(img['scalars']), read_scalars(cch['scalars'])
    assert len(li['train']['loss']) == 2 * 3  # 48 images / batch 16 x 2 epochs, logged each
    np.testing.assert_allclose(lc['train']['loss'], li['train']['loss'], atol=1e-5)
    for a, b in zip(_head(str(tmp_path / 'img')), _head(str(tmp_path / 'cache'))):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # the cache holds the whole split, in the image dataset's order
    val = load_feature_cache(osp.join(tmp_path, 'cache', 'feature_cache', 'val.npz'))
    assert val['features'].shape == (24, 64)
    assert [int(x) for x in val['labels']] == [i // 2 for i in range(24)]
    assert str(val['classes'][0]) == 'blue_circle'


def test_cache_is_reused_and_rebuilt_when_the_encoder_changes(toy_cls_root, tmp_path):
    cfg = toy_probe_cfg('dinov2-tiny', toy_cls_root)
    files = build_feature_caches(cfg, str(tmp_path), splits=('val', ))
    os.utime(files['val'], (1, 1))
    build_feature_caches(cfg, str(tmp_path), splits=('val', ))
    assert osp.getmtime(files['val']) == 1  # same encoder + data: reused
    cfg.model.backbone.timm_kwargs.depth = 1
    build_feature_caches(cfg, str(tmp_path), splits=('val', ))
    assert osp.getmtime(files['val']) > 1  # another encoder: re-encoded


def test_cache_errors(toy_cls_root, tmp_path):
    cfg = toy_probe_cfg('dinov2-tiny', toy_cls_root)
    cfg.train_dataloader.dataset.pipeline.insert(
        1, dict(type='RandomFlip', prob=0.5, direction='horizontal'))
    with pytest.raises(ValueError, match=r"random transforms \['RandomFlip'\]"):
        build_feature_caches(cfg, str(tmp_path))
    with pytest.raises(MissingResourceError, match='--cache'):
        load_feature_cache(str(tmp_path / 'none.npz'))
    with pytest.raises(ValueError, match='another encoder'):
        CachedFeatureBackbone(64)(torch.zeros(2, 32))


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _save_tiny_sam(cfg, path: str, scale: float = 1.0) -> str:
    """Write the toy config's tiny SAM encoder, weights x ``scale``, as an official-layout
    checkpoint (``image_encoder.*``) at ``path``."""
    from mmpretrain.registry import MODELS
    bcfg = copy.deepcopy(cfg.model.backbone)
    bcfg.checkpoint = None
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(0)
        vit = MODELS.build(bcfg).encoder.encoder
    state = {f'image_encoder.{k}': v * scale if v.is_floating_point() else v
             for k, v in vit.state_dict().items()}
    torch.save(state, path)
    return path


def test_cache_is_rebuilt_when_the_weights_at_the_same_path_change(toy_cls_root, tmp_path):
    ckpt = _save_tiny_sam(toy_probe_cfg('sam-tiny', toy_cls_root), str(tmp_path / 'sam.pth'))
    cfg = toy_probe_cfg('sam-tiny', toy_cls_root, **{'model.backbone.checkpoint': ckpt})
    first = build_feature_caches(cfg, str(tmp_path / 'cache'), splits=('val', ))['val']
    old = load_feature_cache(first)
    os.utime(first, (1, 1))
    build_feature_caches(cfg, str(tmp_path / 'cache'), splits=('val', ))
    assert osp.getmtime(first) == 1  # same weights: reused

    _save_tiny_sam(cfg, ckpt, scale=1.05)  # same path, same config text, other weights
    records = _Records()
    logger = MMLogger.get_current_instance()
    logger.addHandler(records)
    try:
        build_feature_caches(cfg, str(tmp_path / 'cache'), splits=('val', ))
    finally:
        logger.removeHandler(records)
    new = load_feature_cache(first)
    fresh = load_feature_cache(
        build_feature_caches(cfg, str(tmp_path / 'fresh'), splits=('val', ))['val'])
    assert osp.getmtime(first) > 1  # re-encoded
    np.testing.assert_array_equal(new['features'], fresh['features'])
    assert not np.allclose(new['features'], old['features'])
    w_old, w_new = old['meta']['encoder']['weights'], new['meta']['encoder']['weights']
    assert w_old != w_new and w_new == fresh['meta']['encoder']['weights']
    assert any(f'encoded with weights {w_old}, the encoder now has {w_new}' in m
               for m in records.messages), records.messages
    assert new['meta']['encoder']['img_size'] == 256


def test_cache_is_rebuilt_when_the_preprocessing_changes(toy_cls_root, tmp_path):
    cfg = toy_probe_cfg('dinov2-tiny', toy_cls_root)
    path = build_feature_caches(cfg, str(tmp_path), splits=('val', ))['val']
    os.utime(path, (1, 1))
    cfg.model.data_preprocessor.std = [1.0, 1.0, 1.0]
    build_feature_caches(cfg, str(tmp_path), splits=('val', ))
    assert osp.getmtime(path) > 1
    assert load_feature_cache(path)['meta']['encoder']['preprocessing']['std'] == [1., 1., 1.]
