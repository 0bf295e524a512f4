"""The SAMIC detector from the toy config: loss with and without GT, prediction, metric."""
import numpy as np
import pytest
import torch
from mmengine.config import Config

from mmdet.registry import DATASETS, MODELS
from mmsamantics.models.detectors.samic import SAMIC, mask_nms

from helpers import REPO

CONFIG = f'{REPO}/configs/samic_toy.py'


@pytest.fixture(scope='module')
def setup(toy_root):
    cfg = Config.fromfile(CONFIG)
    cfg.model.backbone.checkpoint = None
    cfg.model.mask_head.decoder.checkpoint = None
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    datasets = {}
    for split in ('train', 'test'):
        ds_cfg = cfg[f'{split}_dataloader'].dataset
        ds_cfg.data_root = toy_root + '/'
        datasets[split] = DATASETS.build(ds_cfg)
    return cfg, model, datasets


def batch(model, dataset, idx, training):
    data = [dataset[i] for i in idx]
    return model.data_preprocessor(dict(inputs=[d['inputs'] for d in data],
                                        data_samples=[d['data_samples'] for d in data]),
                                   training)


def test_loss_with_gt_backpropagates_to_the_learner_only(setup):
    _, model, ds = setup
    model.train()
    data = batch(model, ds['train'], [0, 1], True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {'loss_kld', 'loss_cc', 'loss_nss'}
    total = sum(losses.values())
    assert torch.isfinite(total)
    model.zero_grad()
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.prompter.learner.parameters())
    for part in (model.prompter.feature_extractor, model.backbone.encoder,
                 model.mask_head.decoder):  # frozen, BN/dropout in eval
        assert all(p.grad is None for p in part.parameters())
        assert not any(m.training for m in part.modules())


def test_loss_without_gt_instances(setup):
    _, model, ds = setup
    data = batch(model, ds['train'], [0], True)
    s = data['data_samples'][0]
    s.gt_heatmaps = torch.zeros_like(s.gt_heatmaps)  # reference class absent from target
    losses = model.loss(data['inputs'], data['data_samples'])
    v = {k: t.item() for k, t in losses.items()}
    assert v['loss_cc'] == 0 and v['loss_nss'] == 0 and v['loss_kld'] == 0
    assert 0 < v['loss_empty'] <= 1
    del s.gt_heatmaps
    with pytest.raises(ValueError, match='GenerateSaliencyHeatmaps'):
        model.loss(data['inputs'], data['data_samples'])
    s.ref_instances = s.ref_instances[:0]
    with pytest.raises(ValueError, match='no \\(target, reference\\) pair'):
        model.loss(data['inputs'], data['data_samples'])


@pytest.mark.parametrize('mode', ['per_component', 'all_points'])
def test_predict_returns_labelled_instances(setup, mode):
    _, model, ds = setup
    model.eval()
    model.test_cfg.update(prompt_mode=mode, peak_thr=0.3)
    try:
        data = batch(model, ds['test'], [0, 1], False)
        with torch.no_grad():
            out = model.predict(data['inputs'], data['data_samples'])
    finally:
        model.test_cfg.update(prompt_mode='per_component', peak_thr=0.5)
    assert sum(len(s.pred_instances) for s in out) > 0  # thr 0.3: the random model has peaks
    for s in out:
        queried = sorted(set(s.ref_instances.labels.tolist()))
        assert s.heatmap_labels.tolist() == queried
        assert s.pred_heatmaps.shape == (len(queried), 128, 128)
        p = s.pred_instances
        h, w = s.ori_shape
        assert p.masks.shape[1:] == (h, w) and p.masks.dtype == torch.bool
        assert set(p.labels.tolist()) <= set(queried)
        assert len(p.bboxes) == len(p.scores) == len(p.masks)
        assert (p.scores >= 0).all() and (p.scores <= 1).all()
        for m, b in zip(p.masks, p.bboxes):  # boxes are the masks' tight boxes
            ys, xs = np.nonzero(m.numpy())
            np.testing.assert_allclose(b.numpy(), [xs.min(), ys.min(), xs.max() + 1,
                                                   ys.max() + 1])


def test_predict_without_peak_gives_empty_result(setup):
    _, model, ds = setup
    model.eval()
    model.test_cfg['peak_thr'] = 1.01  # a softmax never reaches it
    try:
        data = batch(model, ds['test'], [0], False)
        with torch.no_grad():
            s = model.predict(data['inputs'], data['data_samples'])[0]
    finally:
        model.test_cfg['peak_thr'] = 0.5
    assert len(s.pred_instances) == 0 and s.pred_instances.masks.shape[1:] == s.ori_shape


def test_mask_nms_and_bad_test_cfg(setup):
    cfg, _, _ = setup
    masks = torch.zeros(3, 10, 10, dtype=torch.bool)
    masks[0, :5], masks[1, :4], masks[2, 6:] = True, True, True
    keep = mask_nms(masks, torch.tensor([0.5, 0.9, 0.1]), 0.5)
    assert keep.tolist() == [1, 2]  # 0 overlaps 1 (IoU 0.8) and scores lower
    frag = torch.zeros(1, 30, 30, dtype=torch.bool)
    frag[0, 5:20, 5:20] = True
    frag[0, 25:27, 25:27] = True   # island of 4 px
    frag[0, 10, 10] = False        # hole of 1 px
    clean = SAMIC._clean(frag, 10)[0]
    expect = torch.zeros(30, 30, dtype=torch.bool)
    expect[5:20, 5:20] = True
    assert torch.equal(clean, expect)
    bad = cfg.model.copy()
    bad.test_cfg = dict(peak_treshold=0.5)
    with pytest.raises(ValueError, match='unknown test_cfg'):
        MODELS.build(bad)


def test_k_shot_heatmaps_are_averaged(setup, toy_root):
    cfg, model, _ = setup
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.data_root, ds_cfg.shots = toy_root + '/', 2
    two_shot = DATASETS.build(ds_cfg)
    model.eval()
    data = batch(model, two_shot, [0], False)
    s = data['data_samples'][0]
    with torch.no_grad():
        pairs = model._forward(data['inputs'], data['data_samples'])[:, 0]
        model.test_cfg['use_sam'] = False
        try:
            out = model.predict(data['inputs'], data['data_samples'])[0]
        finally:
            model.test_cfg['use_sam'] = True
    ref_labels = s.ref_instances.labels
    assert len(ref_labels) > len(out.heatmap_labels)  # some class has two references
    for q, lb in enumerate(out.heatmap_labels.tolist()):
        torch.testing.assert_close(out.pred_heatmaps[q], pairs[ref_labels == lb].mean(0))
    assert len(out.pred_instances) == 0  # use_sam=False: heatmaps only


def test_reference_features_computed_once_in_eval(setup):
    _, model, ds = setup
    model.eval()
    model.reference_store.reset()
    data = batch(model, ds['test'], [0, 1], False)
    fresh = model._pair_heatmaps(data['inputs'], data['data_samples'])[0]
    keys = {k for d in data['data_samples'] for k in d.metainfo['ref_keys']}
    assert set(model.reference_store.cached_keys()) == keys
    calls = []
    orig = model.prompter.extract_feats
    model.prompter.extract_feats = lambda x: calls.append(len(x)) or orig(x)
    try:
        again = model._pair_heatmaps(data['inputs'], data['data_samples'])[0]
    finally:
        del model.prompter.extract_feats
    assert calls == [2]  # the two targets only: every reference came from the cache
    assert torch.allclose(fresh, again)
    model.load_state_dict(model.state_dict())  # other weights: the cache is dropped
    assert not len(model.reference_store)
