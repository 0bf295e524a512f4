"""PerSAM from its toy config: the guided decoder, the location prior against a direct
computation, references (bank = re-encoding), predictions and bad inputs."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.dataset import pseudo_collate

from helpers import persam_cfg
from mmsamantics.apis import build_dataset, build_model
from mmsamantics.models.matching import masks_to_boxes
from mmsamantics.models.persam import (attention_bias, cosine_map, guided_mask_decoder,
                                       input_prior, negative_points, select_points)


@pytest.fixture(scope='module')
def setup(toy_root):
    torch.manual_seed(0)
    cfg = persam_cfg(toy_root)
    model = build_model(cfg, None, 'cpu')
    ds = build_dataset(cfg, 'test')
    batch = model.data_preprocessor(pseudo_collate([ds[i] for i in range(2)]), False)
    return cfg, model, ds, batch


def test_unguided_decoder_is_sams(setup):
    _, model, _, batch = setup
    dec = model.mask_head.decoder
    embed = model.backbone(batch['inputs'][:1])[-1]
    pts = torch.tensor([[[40., 60.], [200., 10.]], [[100., 100.], [5., 250.]]])
    lbl = torch.tensor([[1, 0], [1, 1]])
    for multi in (False, True):
        ref = dec.predict_point_masks(embed, pts, lbl, multimask_output=multi)
        sparse, dense = dec.prompt_encoder(points=(pts, lbl), boxes=None, masks=None)
        ours = guided_mask_decoder(dec.mask_decoder, embed, dec.prompt_encoder.get_dense_pe(),
                                   sparse, dense, multi)
        for a, b in zip(ours, ref):
            assert a.shape == b.shape
            assert torch.allclose(a, b, atol=1e-5)
    # guidance changes the output (the hooks are live)
    bias = torch.rand(2, 1, 1, embed.shape[-1] ** 2)
    guided = guided_mask_decoder(dec.mask_decoder, embed, dec.prompt_encoder.get_dense_pe(),
                                 sparse, dense, False, bias, torch.randn(2, 1, dec.embed_dim))
    plain = dec.predict_point_masks(embed, pts, lbl, multimask_output=False)[0]
    assert guided[0].shape == plain.shape and not torch.allclose(guided[0], plain)


def test_location_prior_against_a_direct_computation(setup):
    _, model, _, batch = setup
    ds = batch['data_samples'][0]
    model.reference_store.reset()
    labels, feats = model.reference_features([ds])[0]
    # T_R directly: SAM embedding of the reference, mean of its tokens weighted by the
    # fraction of each 16 x 16 cell its mask covers
    embed_r = model.backbone(ds.ref_inputs[:1])[-1][0].numpy()  # (D, h, w)
    m = ds.ref_masks[0].float().numpy()
    h = embed_r.shape[-1]
    cov = m.reshape(h, m.shape[0] // h, h, m.shape[1] // h).mean((1, 3))
    t_r = (embed_r * cov).sum((1, 2)) / cov.sum()
    np.testing.assert_allclose(feats[0].numpy(), t_r, rtol=1e-4, atol=1e-5)
    # cosine map, one token at a time
    embed = model.backbone(batch['inputs'][:1])[-1][0]
    sim = cosine_map(embed, feats[:1])[0].numpy()
    e = embed.numpy()
    for y, x in ((0, 0), (3, 7), (15, 15)):
        v = e[:, y, x]
        direct = v @ t_r / np.linalg.norm(v) / np.linalg.norm(t_r)
        assert abs(sim[y, x] - direct) < 1e-4
    # points: arg max / arg min of the map upsampled to the image's input pixels
    valid = tuple(ds.metainfo['img_shape'][:2])
    prior = input_prior(torch.from_numpy(sim)[None], 256, valid)
    up = F.interpolate(F.interpolate(torch.from_numpy(sim)[None, None], (64, 64),
                                     mode='bilinear'), (256, 256), mode='bilinear')[0, 0]
    up = up[:valid[0], :valid[1]].numpy()
    y, x = np.unravel_index(up.argmax(), up.shape)
    pos, peak = select_points(prior, torch.zeros_like(prior, dtype=torch.bool))
    assert pos[0].tolist() == [x, y] and abs(float(peak[0]) - up.max()) < 1e-6
    y, x = np.unravel_index(up.argmin(), up.shape)
    assert negative_points(prior)[0].tolist() == [x, y]
    sup = torch.zeros_like(prior, dtype=torch.bool)
    sup[0, :, :] = True
    assert select_points(prior, sup)[1][0] == float('-inf')
    # attention weights: sigmoid of the standardised map over the valid tokens
    bias = attention_bias(torch.from_numpy(sim)[None], valid, 256)[0, 0, 0].numpy()
    vh, vw = -(-valid[0] // 16), -(-valid[1] // 16)
    v = sim[:vh, :vw]
    z = (sim - v.mean()) / v.std(ddof=1)
    z[vh:, :], z[:, vw:] = z[:vh, :vw].min(), z[:vh, :vw].min()
    np.testing.assert_allclose(bias, (1 / (1 + np.exp(-z))).ravel(), rtol=1e-4, atol=1e-5)


def test_predictions_and_bank(setup, toy_root, tmp_path):
    cfg, model, ds, batch = setup
    from mmsamantics.structures.reference_bank import save_reference_bank
    out = model.predict(batch['inputs'], [d.clone() for d in batch['data_samples']])
    for d in out:
        p = d.pred_instances
        h, w = d.metainfo['ori_shape'][:2]
        assert p.masks.shape[1:] == (h, w) and p.masks.dtype == torch.bool
        assert len(p) <= model.test_cfg['max_per_img']
        assert torch.equal(p.bboxes, masks_to_boxes(p.masks))
        assert set(p.labels.tolist()) <= set(d.ref_instances.labels.tolist())
        assert (p.scores[:-1] >= p.scores[1:]).all() and (p.scores <= 1 + 1e-5).all()
        assert p.masks.flatten(1).any(1).all() and len(p) > 0
    # every class at most max_instances times
    for d in out:
        counts = torch.bincount(d.pred_instances.labels)
        assert counts.max() <= model.test_cfg['max_instances']
    # encode_references (API / bank builder) = the detector's own reference features
    refs = [r for lb in sorted(ds.reference_set) for r in ds.reference_set[lb]]
    keys, feats = model.encode_references(refs)
    assert feats.shape == (len(refs), 1, model.embed_dim)
    model.reference_store.reset()
    for (_, f), d in zip(model.reference_features(batch['data_samples']),
                         batch['data_samples']):
        idx = [keys.index(k) for k in d.metainfo['ref_keys']]
        assert torch.allclose(f, feats[idx, 0], atol=1e-5)
    bank = str(tmp_path / 'bank.pth')
    save_reference_bank(bank, keys, ['x'] * len(keys), feats, model.cache_signature)
    banked = build_model(persam_cfg(toy_root, **{'model.reference_store.bank': bank}), None, 'cpu')
    banked.load_state_dict(model.state_dict())
    samples = [d.clone() for d in batch['data_samples']]
    for d in samples:
        d.ref_inputs = None  # every feature from the bank
    b = banked.predict(batch['inputs'], samples)
    for x, y in zip(out, b):
        assert torch.allclose(x.pred_instances.scores, y.pred_instances.scores, atol=1e-5)
        assert torch.equal(x.pred_instances.masks, y.pred_instances.masks)
    assert model.encode_references([])[1].shape == (0, 1, model.embed_dim)


def test_bad_inputs(setup, toy_root, tmp_path):
    cfg, model, _, batch = setup
    ds = batch['data_samples'][0].clone()
    none = ds.clone()
    none.set_metainfo(dict(ref_keys=[]))
    with pytest.raises(ValueError, match='has no references'):
        model.predict(batch['inputs'][:1], [none])
    # a reference box outside its image: nothing of the reference to describe
    img = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(ValueError, match='outside its image'):
        model.encode_references([dict(key='a', img=img, bbox=[100, 100, 120, 120])])
    with pytest.raises(RuntimeError, match='training-free'):
        model.loss(batch['inputs'], batch['data_samples'])
    from mmsamantics.utils.checkpoint import MissingResourceError
    with pytest.raises(MissingResourceError, match='pretrain_toy_sam.py'):
        build_model(persam_cfg(toy_root, **{
            'model.backbone.checkpoint': str(tmp_path / 'missing.pth')}), None, 'cpu')
    with pytest.raises(ValueError, match='unknown PerSAM test_cfg'):
        build_model(persam_cfg(toy_root, **{'model.test_cfg.max_inst': 1}), None, 'cpu')
