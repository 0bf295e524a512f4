"""SAMDINOv2Matcher from its toy config: reference features, predictions, banks, bad inputs."""
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from helpers import matcher_cfg
from mmsamantics.models.matching import masks_to_boxes
from mmsamantics.apis import build_dataset, build_model


@pytest.fixture(scope='module')
def setup(toy_root):
    cfg = matcher_cfg(toy_root)
    model = build_model(cfg, None, 'cpu')
    ds = build_dataset(cfg, 'test')
    batch = model.data_preprocessor(pseudo_collate([ds[i] for i in range(2)]), False)
    return cfg, model, ds, batch


def test_reference_features_are_masked_dinov2_averages(setup):
    _, model, _, batch = setup
    model.reference_store.reset()
    ds = batch['data_samples'][0]
    labels, feats = model.reference_features([ds])[0]
    assert torch.equal(labels, ds.ref_instances.labels)
    # direct: DINOv2 on the reference's valid region (longest side to DINOv2's size),
    # mean of the tokens weighted by how much of each token cell the mask covers
    enc = model.feature_extractor
    for j in range(len(labels)):
        h, w = ds.metainfo['ref_img_shapes'][j]
        gh, gw = enc.input_size(h, w)
        valid = ds.ref_inputs[j:j + 1, :, :h, :w]
        tok = enc.vit.forward_features(torch.nn.functional.interpolate(
            valid, (gh, gw), mode='bilinear', antialias=True))[:, 1:]
        tok = tok[0].T.reshape(-1, gh // 14, gw // 14).numpy()  # (C, g_h, g_w)
        m = torch.from_numpy(ds.ref_masks[j, :h, :w].float().numpy())
        cov = torch.nn.functional.adaptive_avg_pool2d(m[None], tok.shape[1:])[0].numpy()
        direct = (tok * cov).sum((1, 2)) / cov.sum()
        np.testing.assert_allclose(feats[j].numpy(), direct, rtol=1e-4, atol=1e-5)
        assert max(gh, gw) == enc.img_size and gh % 14 == gw % 14 == 0
    # computed once: a second call finds every key in the cache
    assert set(ds.metainfo['ref_keys']) <= set(model.reference_store.cached_keys())


def test_predictions_are_consistent(setup):
    _, model, _, batch = setup
    out = model.predict(batch['inputs'], batch['data_samples'])
    for ds in out:
        p = ds.pred_instances
        h, w = ds.metainfo['ori_shape'][:2]
        assert p.masks.shape[1:] == (h, w) and p.masks.dtype == torch.bool
        assert len(p) <= model.test_cfg['max_per_img'] and len(p) > 0
        assert torch.equal(p.bboxes, masks_to_boxes(p.masks))
        assert set(p.labels.tolist()) <= set(ds.ref_instances.labels.tolist())
        assert (p.scores[:-1] >= p.scores[1:]).all() and (p.scores.abs() <= 1 + 1e-5).all()
    # the benchmark's stage timers wrap the model from outside and leave it as it was
    from helpers import load_tool
    bench = load_tool('tools/analysis/benchmark_matcher.py')
    times = {}
    with bench.stage_timer(model, times):
        again = model.predict(batch['inputs'], batch['data_samples'])
    assert set(times) == {'sam_encoder', 'references', 'proposals', 'features', 'matching',
                          'masks'}
    assert not {'forward', 'reference_features', 'region_features', 'match'} & (
        set(vars(model)) | set(vars(model.backbone)))
    assert torch.equal(again[0].pred_instances.scores, out[0].pred_instances.scores)


def test_labels_follow_the_most_similar_prototype(setup):
    _, model, _, _ = setup
    feats = torch.tensor([[1., 0.], [0., 1.], [1., 0.1]])
    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[0, :4], masks[1, 4:], masks[2, :4, :7] = True, True, True  # 2 ~ duplicate of 0
    keep, scores, labels = model.match(feats, torch.ones(3), masks, torch.tensor([5, 7, 7]),
                                       torch.tensor([[2., 0.], [0., 1.], [0., 3.]]))
    assert keep.tolist() == [0, 1] and labels.tolist() == [5, 7]  # 2 removed as duplicate
    assert torch.allclose(scores, torch.ones(2))


def test_crop_mode_and_bank_give_the_same_as_online(setup, toy_root, tmp_path):
    cfg, model, ds, batch = setup
    from mmsamantics.structures.reference_bank import save_reference_bank
    refs = [r for lb in sorted(ds.reference_set) for r in ds.reference_set[lb]]
    keys, feats = model.encode_references(refs)
    model.reference_store.reset()
    online = model.reference_features(batch['data_samples'])
    for (lab, f), d in zip(online, batch['data_samples']):
        idx = [keys.index(k) for k in d.metainfo['ref_keys']]
        assert torch.allclose(f, feats[idx, 0], atol=1e-5)
    bank = str(tmp_path / 'bank.pth')
    save_reference_bank(bank, keys, ['x'] * len(keys), feats, model.cache_signature)
    banked = build_model(matcher_cfg(toy_root, **{'model.reference_store.bank': bank}), None, 'cpu')
    banked.load_state_dict(model.state_dict())  # the same random SAM
    a = model.predict(batch['inputs'], [d.clone() for d in batch['data_samples']])
    samples = [d.clone() for d in batch['data_samples']]
    for d in samples:
        d.ref_inputs = None  # nothing to encode: every feature comes from the bank
    b = banked.predict(batch['inputs'], samples)
    for x, y in zip(a, b):
        assert torch.allclose(x.pred_instances.scores, y.pred_instances.scores, atol=1e-5)
        assert torch.equal(x.pred_instances.masks, y.pred_instances.masks)
    # the bank was made in dense mode: switching the model to crop mode refuses it
    banked.feature_mode = 'crop'
    with pytest.raises(ValueError, match='feature mode'):
        banked.predict(batch['inputs'], samples)
    banked.feature_mode = 'dense'
    # a bank of other weights is refused
    save_reference_bank(bank, keys, ['x'] * len(keys), feats, 'another')
    other = build_model(matcher_cfg(toy_root, **{'model.reference_store.bank': bank}), None, 'cpu')
    with pytest.raises(ValueError, match='another DINOv2'):
        other.predict(batch['inputs'], samples)
    # crop-and-encode: one DINOv2 pass per proposal, same outputs format
    model.feature_mode = 'crop'
    try:
        props_masks = torch.zeros(2, 64, 64, dtype=torch.bool)
        props_masks[0, 8:40, 8:30] = True
        props_masks[1, 30:60, 20:64] = True
        f = model.region_features(batch['inputs'][:1], props_masks, (256, 256))
        assert f.shape == (2, model.feature_extractor.embed_dim) and torch.isfinite(f).all()
    finally:
        model.feature_mode = 'dense'


def test_bad_inputs(setup, toy_root):
    cfg, model, _, batch = setup
    ds = batch['data_samples'][0].clone()
    # a reference without a mask: its box is pooled
    model.reference_store.reset()
    boxed = ds.clone()
    del boxed.ref_masks
    _, f_box = model.reference_features([boxed])[0]
    rect = model._reference_masks(boxed)
    model.reference_store.reset()
    direct = model.region_features(ds.ref_inputs[:1], rect[:1],
                                   ds.metainfo['ref_img_shapes'][0])
    assert torch.allclose(f_box[:1], direct, atol=1e-5)
    x1, y1, x2, y2 = ds.ref_instances.bboxes[0].round().long().tolist()
    assert rect[0].sum() == (x2 - x1) * (y2 - y1)
    # a target without references
    none = ds.clone()
    none.set_metainfo(dict(ref_keys=[]))
    with pytest.raises(ValueError, match='has no references'):
        model.predict(batch['inputs'][:1], [none])
    # an image without proposals: an empty, well-formed result
    gen = model.proposal_generator
    saved = gen.pred_iou_thresh
    gen.pred_iou_thresh = 100.0
    try:
        p = model.predict(batch['inputs'][:1], [ds.clone()])[0].pred_instances
    finally:
        gen.pred_iou_thresh = saved
    h, w = ds.metainfo['ori_shape'][:2]
    assert len(p) == 0 and p.masks.shape == (0, h, w) and p.bboxes.shape == (0, 4)
    with pytest.raises(RuntimeError, match='training-free'):
        model.loss(batch['inputs'], batch['data_samples'])


def test_dinov2_weights_load_and_survive_init_weights(tmp_path):
    from mmsamantics.models.backbones import DINOv2Encoder
    from mmsamantics.utils.checkpoint import MissingResourceError
    a = DINOv2Encoder('tiny', img_size=56, random_seed=1)
    # the official layout (extra mask_token, wrapped in 'teacher') loads into timm's model
    state = {k: v + 0.01 for k, v in a.vit.state_dict().items()}
    official = dict(teacher=dict(state, mask_token=torch.zeros(1, 96)))
    torch.save(official, tmp_path / 'd.pth')
    b = DINOv2Encoder('tiny', img_size=56, checkpoint=str(tmp_path / 'd.pth'))
    b.init_weights()  # what the Runner calls: must not re-initialise DINOv2
    for k, v in b.vit.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert all(not p.requires_grad for p in b.parameters())
    assert b.train().training is False
    with pytest.raises(MissingResourceError, match='dinov2_vitl14_pretrain.pth'):
        DINOv2Encoder('vit_l14', checkpoint=str(tmp_path / 'missing.pth'))
    torch.save(dict(foo=torch.zeros(1)), tmp_path / 'bad.pth')
    with pytest.raises(RuntimeError, match='missing keys'):
        DINOv2Encoder('tiny', img_size=56, checkpoint=str(tmp_path / 'bad.pth'))
    x = torch.randn(1, 3, 64, 64)
    assert DINOv2Encoder('tiny', img_size=56)(x).shape == (1, 96, 4, 4)
