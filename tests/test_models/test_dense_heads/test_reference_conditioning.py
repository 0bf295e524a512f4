"""Reference-aware classification head and the class-code diagnostic of InSAM-DETR."""
import pytest
import torch
import torch.nn.functional as F

from helpers import toy_batch, toy_model


def build(toy_root, **model):
    return toy_model(toy_root, **model)


def test_match_logits_are_scaled_cosines(toy_root):
    _, model = build(toy_root, bbox_head=dict(type='ReferenceAwareDETRHead', embed_dims=128))
    head = model.bbox_head
    with torch.no_grad():
        head.log_scale.fill_(2.0)
        head.match_bias.fill_(-0.5)
    h, e = torch.randn(3, 2, 5, 128), torch.randn(2, 128)
    got = head.match_logits(h, e)
    q = F.normalize(head.query_proj(h), dim=-1)
    r = F.normalize(head.ref_proj(e), dim=-1)
    for p in range(2):
        want = torch.exp(torch.tensor(2.0)) * (q[:, p] @ r[p]) - 0.5
        torch.testing.assert_close(got[:, p, :, 0], want)
    refs = [torch.rand(2, 5, 2) for _ in range(4)]
    with pytest.raises(ValueError, match='pairs'):
        head(h, refs)


def test_reference_aware_training_reaches_the_reference(toy_root):
    cfg, model = build(toy_root, bbox_head=dict(type='ReferenceAwareDETRHead', embed_dims=128))
    model.train()
    data = toy_batch(model, cfg, 'train', [0, 1], True)
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    # the class loss depends on the reference through both paths: the token-merge MLP
    # (queries) and the head's reference projection (scores)
    assert model.bbox_head.ref_proj.weight.grad.abs().sum() > 0
    assert model.token_merge.mlp[0].weight.grad.abs().sum() > 0
    model.eval()
    data = toy_batch(model, cfg, 'test', [0], False)
    with torch.no_grad():
        res = model.predict(data['inputs'], data['data_samples'])[0].pred_instances
    # oracle mode keeps min(max_per_pair, queries) detections per (target, class) pair
    per_pair = min(model.test_cfg.get('max_per_pair', 100), model.num_queries)
    n_pairs = len(model.reference_pairs(data['data_samples']))
    assert n_pairs > 1 and len(res) == per_pair * n_pairs and torch.isfinite(res.scores).all()


def test_class_code_replaces_the_reference(toy_root, monkeypatch):
    import mmsamantics.analysis  # noqa: F401  (registers the diagnostic model)
    cfg, model = build(toy_root, type='ClassCodeInSAMDETR', num_class_codes=12)
    model.eval()
    data = toy_batch(model, cfg, 'test', [0, 1], False)
    monkeypatch.setattr(model.mask_head.decoder, 'mask_tokens',
                        lambda *a: pytest.fail('a reference was encoded'))
    pairs = model.reference_pairs(data['data_samples'])
    assert len(pairs) > 0
    torch.testing.assert_close(pairs.embeds, model.class_codes.weight[pairs.labels])
    with pytest.raises(ValueError, match='num_class_codes'):
        build(toy_root, type='ClassCodeInSAMDETR', num_class_codes=0)
    # the option string of earlier configs names the model that replaces it
    with pytest.raises(ValueError, match="type='ClassCodeInSAMDETR'"):
        build(toy_root, reference_encoder='class_code', num_class_codes=12)


@pytest.mark.parametrize('head', ['DeformableDETRHead', 'ReferenceAwareDETRHead'])
def test_scores_follow_the_references(toy_root, head):
    """The reference path is wired: the same targets queried with another class's references
    (the 'shuffled' control) get other scores, for the paper's head and the reference-aware
    one. A detector that ignored its references would give identical scores."""
    cfg, model = build(toy_root, bbox_head=dict(type=head, embed_dims=128))
    model.eval()
    logits = {}
    for control in (None, 'shuffled'):
        cfg.test_dataloader.dataset.mode = 'open'
        cfg.test_dataloader.dataset.ref_control = control
        data = toy_batch(model, cfg, 'test', [0, 1], False)
        with torch.no_grad():  # raw class logits per (target, class) pair: (L, P, Q, 1)
            logits[control] = model._forward(data['inputs'], data['data_samples'])[0]
    # open mode queries every class in both runs (same pairs, same order), each class
    # answered with another class's references when shuffled
    assert logits[None].shape == logits['shuffled'].shape
    assert logits[None].shape[1] == 2 * 12
    assert not torch.allclose(logits[None], logits['shuffled'], atol=1e-4)
