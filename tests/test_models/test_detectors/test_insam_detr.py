import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.structures import InstanceData

from mmdet.registry import DATASETS, MODELS
from helpers import toy_cfg


@pytest.fixture(scope='module')
def setup(toy_root):
    cfg = toy_cfg(toy_root)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.test_dataloader.dataset)
    return cfg, model, train, val


def _batch(model, ds, idxs, training):
    return model.data_preprocessor(pseudo_collate([ds[i] for i in idxs]), training)


def test_reference_pairs_are_explicit_and_kshot_averaged(setup):
    cfg, model, train, val = setup
    model.eval()
    data = _batch(model, val, [0], False)
    ds = data['data_samples'][0]
    # duplicate the references as 2 shots each, shuffled: pairing must not depend on order
    n = len(ds.ref_instances)
    perm = torch.randperm(2 * n)
    ds.ref_inputs = torch.cat([ds.ref_inputs, ds.ref_inputs.flip(-1)])[perm]
    boxes = ds.ref_instances.bboxes.clone()
    flipped = boxes.clone()
    flipped[:, [0, 2]] = 256 - boxes[:, [2, 0]]
    ds.ref_instances = InstanceData(bboxes=torch.cat([boxes, flipped])[perm],
                                    labels=ds.ref_instances.labels.repeat(2)[perm])
    keys = list(ds.metainfo['ref_keys'])
    ds.set_metainfo(dict(ref_keys=[(keys + [k + ':flip' for k in keys])[i] for i in perm]))
    pairs = model.reference_pairs([ds])
    labels = sorted(set(ds.ref_instances.labels.tolist()))
    assert pairs.labels.tolist() == labels and pairs.img_idx.tolist() == [0] * len(labels)
    # the embedding of each pair = MLP(mean of its two shots' tokens), computed directly
    dec = model.mask_head.decoder
    with torch.no_grad():
        emb = model.backbone(ds.ref_inputs)[-1]
        tok = dec.mask_tokens(emb, ds.ref_instances.bboxes)
        for j, lb in enumerate(labels):
            sel = ds.ref_instances.labels == lb
            assert sel.sum() == 2
            ref = model.token_merge(tok[sel].mean(0, keepdim=True))[0]
            torch.testing.assert_close(pairs.embeds[j], ref, atol=1e-5, rtol=1e-5)


def test_reference_tokens_are_cached(setup, monkeypatch):
    cfg, model, train, val = setup
    model.eval()
    model.reference_store.reset()
    data = _batch(model, val, [0, 1], False)
    calls = []
    orig = model.backbone.forward
    monkeypatch.setattr(model.backbone, 'forward', lambda x: calls.append(len(x)) or orig(x))
    first = model.reference_pairs(data['data_samples']).embeds
    n_refs = len({k for d in data['data_samples'] for k in d.metainfo['ref_keys']})
    assert sum(calls) == n_refs  # each distinct reference encoded once
    calls.clear()
    again = model.reference_pairs(data['data_samples']).embeds
    assert calls == [] and torch.equal(first, again)
    model.load_state_dict(model.state_dict())
    assert len(model.reference_store) == 0  # new weights invalidate the cache


def test_reference_is_added_to_content_queries_only(setup):
    cfg, model, train, val = setup
    memory = torch.randn(2, 4 * 16 * 16, 128)
    shapes = torch.tensor([[16, 16]] * 4)
    ref = torch.randn(2, 128)
    plain, _ = model.pre_decoder(memory, None, shapes)
    cond, _ = model.pre_decoder(memory, None, shapes, ref_embeds=ref)
    torch.testing.assert_close(cond['query'], plain['query'] + ref[:, None])
    torch.testing.assert_close(cond['query_pos'], plain['query_pos'])


def test_loss_with_gt_and_negative_pairs(setup):
    cfg, model, train, val = setup
    model.train()
    data = _batch(model, train, [0, 1], True)
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.token_merge.mlp[0].weight.grad is not None
    assert all(p.grad is None for p in model.backbone.parameters())
    # a pair whose class is absent from the target (no GT) still gives finite losses
    ds = data['data_samples'][0]
    ds.gt_instances = ds.gt_instances[:0]
    losses = model.loss(data['inputs'][:1], [ds])
    assert all(torch.isfinite(v).all() for v in losses.values())


def test_predict_labels_are_reference_classes(setup):
    cfg, model, train, val = setup
    model.eval()
    data = _batch(model, val, [0, 1, 2], False)
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])
    for ds in out:
        pred = ds.pred_instances
        queried = set(ds.ref_instances.labels.tolist())
        assert set(pred.labels.tolist()) <= queried
        # oracle mode: every (image, class) pair keeps min(max_per_pair=100, queries)
        assert len(pred) == min(100, cfg.model.num_queries) * len(queried)
        assert pred.masks.shape[1:] == ds.ori_shape
        assert (pred.bboxes[:, 2:] <= torch.tensor(ds.ori_shape[::-1]) + 1e-3).all()
        assert torch.all(pred.scores[:-1] >= pred.scores[1:])  # merged by score ranking
    # no reference at all -> empty, well-formed predictions
    ds = data['data_samples'][0]
    ds.ref_instances = ds.ref_instances[:0]
    ds.ref_inputs = ds.ref_inputs[:0]
    ds.set_metainfo(dict(ref_keys=[]))
    with torch.no_grad():
        empty = model.predict(data['inputs'][:1], [ds])[0].pred_instances
    assert len(empty) == 0 and empty.masks.shape == (0, *ds.ori_shape)


def test_mismatched_token_config_is_explained(toy_root):
    bad = toy_cfg(toy_root).model
    bad['token_merge'] = dict(bad['token_merge'], num_tokens=5)
    with pytest.raises(ValueError, match='num_tokens=5 but the reference sources give 4'):
        MODELS.build(bad)
    derived = toy_cfg(toy_root).model  # the size need not be stated: it is derived
    derived['token_merge'] = {k: v for k, v in derived['token_merge'].items()
                              if k not in ('num_tokens', 'token_dim')}
    model = MODELS.build(derived)
    assert (model.token_merge.num_tokens, model.token_merge.token_dim) == (4, 64)


def test_init_weights_keeps_frozen_sam(toy_root):
    model = MODELS.build(toy_cfg(toy_root).model)
    frozen = {k: v.clone() for k, v in model.state_dict().items()
              if k.startswith(('backbone.', 'mask_head.decoder.'))}
    model.init_weights()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in frozen.items())
    assert not any(p.requires_grad for k, p in model.named_parameters()
                   if k.startswith(('backbone.', 'mask_head.decoder.')))


def test_shared_value_projection_is_exact(setup):
    """Projecting each target's memory once (not once per pair) changes no loss or gradient,
    and no prediction."""
    cfg, model, train, val = setup
    from mmsamantics.models.layers import PairSharedLinear
    assert all(isinstance(l.cross_attn.value_proj, PairSharedLinear)
               for l in model.decoder.layers)
    data = _batch(model, train, [0, 1, 2], True)
    pairs = model.reference_pairs(data['data_samples'])
    assert len(pairs) > len(data['data_samples'])  # some target has several pairs

    model.share_value_proj = 'always'  # default 'inference': also exercise training

    def loss_and_grads(shared):
        model.train()
        model.zero_grad()
        if not shared:
            orig, model._pair_index.set = model._pair_index.set, lambda idx: None
        torch.manual_seed(0)
        try:
            losses = model(**data, mode='loss')
        finally:
            if not shared:
                model._pair_index.set = orig
        total = sum(v for k, v in losses.items() if 'loss' in k)
        total.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        return losses, grads

    la, ga = loss_and_grads(True)
    lb, gb = loss_and_grads(False)
    model.share_value_proj = 'inference'
    model.eval()
    for k in la:
        torch.testing.assert_close(la[k], lb[k], atol=1e-5, rtol=1e-5, msg=k)
    assert set(ga) == set(gb)
    for k in ga:
        torch.testing.assert_close(ga[k], gb[k], atol=1e-5, rtol=1e-4, msg=k)
    assert any('value_proj' in k for k in ga)
    # inference (the default setting): the same predictions with and without sharing
    data = _batch(model, val, [0, 1], False)
    with torch.no_grad():
        pa = model.predict(data['inputs'], data['data_samples'])
        orig, model._pair_index.set = model._pair_index.set, lambda idx: None
        try:
            pb = model.predict(data['inputs'], data['data_samples'])
        finally:
            model._pair_index.set = orig
    for x, y in zip(pa, pb):
        torch.testing.assert_close(x.pred_instances.scores, y.pred_instances.scores)
        torch.testing.assert_close(x.pred_instances.bboxes, y.pred_instances.bboxes)
    # state-dict keys are those of mmdet's Deformable DETR (checkpoints stay compatible)
    assert 'decoder.layers.0.cross_attn.value_proj.weight' in model.state_dict()


def test_configs_and_checkpoints_of_earlier_versions(toy_root):
    """A config with the keys of earlier versions (reference_encoder, the token-merge size,
    ref_cache_size, a DeformableDETRHead) builds the same model, warning with the new keys;
    the checkpoint written before (tests/fixtures) loads strictly into both, and the
    signature, which banks and caches carry, is unchanged."""
    import copy
    import glob
    import os.path as osp
    import warnings
    from mmengine.config import Config

    from helpers import REPO, toy_overrides
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'insam_detr_toy_shape.py'))
    cfg.merge_from_dict(toy_overrides(toy_root))
    old = copy.deepcopy(cfg.model)
    old.pop('reference_sources')
    old.update(reference_encoder='sam_tokens+regions+shape', ref_cache_size=50,
               token_merge=dict(old.token_merge, num_tokens=8, token_dim=64))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter('always')
        legacy = MODELS.build(old)
    said = ' '.join(str(w.message) for w in seen)
    assert 'model.reference_sources=' in said and 'model.reference_store.cache_size' in said
    new = MODELS.build(cfg.model)
    ckpt = glob.glob(osp.join(REPO, 'tests', 'fixtures', 'insam_detr_toy_shape-*.pth'))[0]
    state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    for m in (legacy, new):
        m.load_state_dict(state, strict=True)
    assert legacy.cache_signature == new.cache_signature
    assert legacy.reference_store.max_entries == 50
    paper = toy_cfg(toy_root).model
    paper['bbox_head'] = dict(paper['bbox_head'], type='DeformableDETRHead')
    assert type(MODELS.build(paper).bbox_head).__name__ == 'InContextDETRHead'
