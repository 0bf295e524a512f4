import copy
import os

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from mmdet.registry import MODELS
from helpers import built_step, cached_twin, toy_cfg
from mmsamantics.apis import build_feature_cache
from mmsamantics.datasets import FeatureCache
from mmsamantics.utils import MissingResourceError


@pytest.fixture(scope='module')
def setup(toy_root, tmp_path_factory):
    root = str(tmp_path_factory.mktemp('cache'))
    model, plain, cached, items, stats = cached_twin(toy_cfg(toy_root), root)
    return model, plain, cached, root, items, stats


def _batch(model, ds, idxs):
    return model.data_preprocessor(pseudo_collate([ds[i] for i in idxs]), True)


def test_cached_training_gives_the_same_losses(setup):
    model, plain, cached, root, items, stats = setup
    assert stats['computed'] == len(items) and stats['skipped'] == 0
    a = _batch(model, plain, [0, 1, 2, 3])
    b = _batch(model, cached, [0, 1, 2, 3])
    # the cached batch carries SAM features, not images, and tokens, not reference images
    assert b['inputs'].shape == (4, 96 + 96, 16, 16)
    assert all('ref_tokens' in ds for ds in b['data_samples'])
    model.reference_store.reset()
    model.train()  # dropout: same seed for both; SAM (frozen, eval) draws no random numbers
    torch.manual_seed(0)
    la = model(**a, mode='loss')
    torch.manual_seed(0)
    calls = []
    orig = model.backbone.forward
    model.backbone.forward = lambda x: calls.append(1) or orig(x)
    try:
        lb = model(**b, mode='loss')
    finally:
        del model.backbone.forward
        model.eval()
    assert calls == []  # SAM never ran on the cached path
    assert set(la) == set(lb)
    for k in la:
        torch.testing.assert_close(lb[k], la[k], atol=1e-5, rtol=1e-5, msg=k)
    assert la['loss_cls'] > 0 and la['loss_bbox'] > 0


def test_fp16_cache_is_close(setup, tmp_path):
    model, plain, cached, root, items, _ = setup
    build_feature_cache(model, items[:6], FeatureCache(str(tmp_path)), dtype='float16')
    a = FeatureCache(root).read_feats(items[0]['img_path'])['feats']
    h = FeatureCache(str(tmp_path)).read_feats(items[0]['img_path'])['feats']
    assert h.dtype == np.float16 and a.dtype == np.float32
    np.testing.assert_allclose(h.astype(np.float32), a, rtol=2e-3, atol=2e-3)
    # about half the bytes
    assert os.path.getsize(FeatureCache(str(tmp_path)).feats_path(items[0]['img_path'])) < \
        0.6 * os.path.getsize(FeatureCache(root).feats_path(items[0]['img_path']))


def test_resume_and_shards(setup, tmp_path):
    model, plain, cached, root, items, _ = setup
    sub = items[:5]
    s0 = build_feature_cache(model, sub, FeatureCache(str(tmp_path)), shard_id=0, num_shards=2,
                             dtype='float32')
    s1 = build_feature_cache(model, sub, FeatureCache(str(tmp_path)), shard_id=1, num_shards=2,
                             dtype='float32')
    assert (s0['computed'], s1['computed']) == (3, 2)
    again = build_feature_cache(model, sub, FeatureCache(str(tmp_path)), dtype='float32')
    assert again['computed'] == 0 and again['skipped'] == 5  # resumes: nothing recomputed
    for it in sub:  # shards write what a single process writes
        np.testing.assert_array_equal(FeatureCache(str(tmp_path)).read_feats(it['img_path'])
                                      ['feats'], FeatureCache(root).read_feats(it['img_path'])
                                      ['feats'])
    assert sorted(os.listdir(tmp_path / 'shards')) == [
        'shard_0_of_1.json', 'shard_0_of_2.json', 'shard_1_of_2.json']
    with pytest.raises(ValueError, match='made differently.*--overwrite'):
        build_feature_cache(model, sub, FeatureCache(str(tmp_path)), dtype='float16')


def test_cache_of_other_weights_is_refused(setup, toy_root):
    model, plain, cached, root, items, _ = setup
    torch.manual_seed(1)
    other = MODELS.build(toy_cfg(toy_root).model).eval()
    b = other.data_preprocessor(pseudo_collate([cached[0]]), True)
    with pytest.raises(ValueError, match='another SAM or preprocessing'):
        other.train()(**b, mode='loss')


def test_flip_of_cached_features(setup):
    model, plain, cached, root, items, _ = setup
    from mmsamantics.datasets.transforms import RandomFlipCachedFeatures
    info = plain.get_data_info(0)
    info['references'] = []
    res = built_step(plain, 'LoadImageChecked')(copy.deepcopy(info))
    res = built_step(plain, 'LoadAnnotations')(res)
    base = built_step(cached, 'LoadCachedSAMFeatures')(
        built_step(cached, 'LoadAnnotations')(copy.deepcopy(info)))
    flipped = RandomFlipCachedFeatures(prob=1.0)(copy.deepcopy(base))
    w = base['img_shape'][1]
    wv = -(-w // 16)
    np.testing.assert_array_equal(flipped['feats'][..., :wv], base['feats'][..., :wv][..., ::-1])
    np.testing.assert_array_equal(flipped['feats'][..., wv:], base['feats'][..., wv:])
    b0, b1 = base['gt_bboxes'].tensor, flipped['gt_bboxes'].tensor
    torch.testing.assert_close(b1[:, 0], w - b0[:, 2])
    assert flipped['flip'] is True


def test_missing_cache_is_explained(tmp_path):
    from mmsamantics.datasets.transforms import LoadCachedSAMFeatures
    t = LoadCachedSAMFeatures(cache_dir=str(tmp_path / 'nope'))
    with pytest.raises(MissingResourceError, match='cache_embeddings.py'):
        t(dict(img_path='x/1.png'))
