"""Shape-aware head: SAM's mask of each query's box compared with the reference's outline."""
import pytest
import torch
import torch.nn.functional as F

from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from helpers import toy_batch, toy_model
from mmsamantics.models.detectors.insam_detr_pairs import ReferencePairs, kshot_groups
from mmsamantics.models.layers.shape_tokens import box_shape_tokens

SHAPE = dict(reference_sources=[dict(type='SAMMaskTokens'), dict(type='RegionTokens'),
                                dict(type='ShapeToken')],
             bbox_head=dict(type='ShapeAwareDETRHead', embed_dims=128, shape_dims=64))


def head_pairs(embeds, shapes, pair):
    """A pairs record for calling the head alone: P pairs' embeddings (P, E), the R shots'
    shape tokens (R, 64) in the last of their 4 + 3 + 1 tokens, the pair of each shot."""
    shots = torch.zeros(len(shapes), 8, 64)
    shots[:, 7] = shapes
    idx = torch.zeros(len(embeds), dtype=torch.long)
    return ReferencePairs(idx, idx, embeds, shots, pair, torch.zeros(1, 64, 16, 16),
                          [(256, 256)])


def build(toy_root, **model):
    return toy_model(toy_root, dict(neg_classes_per_image=2), **model)


def test_shape_term_is_added_to_the_last_layer_only(toy_root):
    _, model = build(toy_root, **SHAPE)
    head = model.bbox_head
    with torch.no_grad():
        head.shape_log_scale.fill_(1.5)
        head.shape_bias.fill_(-2.0)
    h, e = torch.randn(3, 2, 5, 128), torch.randn(2, 128)
    refs = [torch.rand(2, 5, 2) for _ in range(4)]
    qs, rs = torch.rand(2, 5, 64), torch.rand(3, 64)
    pair = torch.tensor([0, 1, 1])  # pair 1 has two shots
    seen = []

    def query_shapes(embedding, coords, img_idx, img_shapes, scores=None, top_k=None):
        seen.append(coords)
        return qs, torch.ones(qs.shape[:2], dtype=torch.bool)

    head.query_shapes = query_shapes  # stands for SAM's decoder, bound at build time
    pairs = head_pairs(e, rs, pair)
    cls, coords = head(h, refs, pairs)
    base, coords2 = head.__class__.__mro__[1].forward(head, h, refs, pairs)  # ref-aware
    phi = head.shape_mlp(rs)
    protos = torch.stack([phi[0], (phi[1] + phi[2]) / 2])  # k shots: the mean embedding
    a, b = F.normalize(head.shape_mlp(qs), dim=-1), F.normalize(protos, dim=-1)
    want = torch.exp(torch.tensor(1.5)) * torch.einsum('pqd,pd->pq', a, b) - 2.0
    torch.testing.assert_close(cls[:-1], base[:-1])
    torch.testing.assert_close(cls[-1, ..., 0], base[-1, ..., 0] + want)
    torch.testing.assert_close(seen[0], coords2[-1])
    assert not seen[0].requires_grad  # boxes enter SAM detached
    head.query_shapes = None
    with pytest.raises(ValueError, match='not bound'):
        head(h, refs, pairs)


def test_insam_detr_shape_head_end_to_end(toy_root):
    cfg, model = build(toy_root, **SHAPE)
    model.train()
    data = toy_batch(model, cfg, 'train', [0, 1], True)
    samples = data['data_samples']
    pairs = model.reference_pairs(samples)
    # each reference's last (shape) token, with its pair
    from mmsamantics.models.detectors.insam_detr_pairs import gather_references
    refs = gather_references(samples, model.reference_store.check_signature)
    _, inverse = kshot_groups(refs.img_idx, refs.labels)
    tokens = model._gathered_tokens(refs)
    torch.testing.assert_close(pairs.shots[:, 7], tokens[:, -1])
    assert torch.equal(pairs.shot_pair, inverse)
    # the queries' shape tokens: SAM's mask for each box of each pair, in input pixels
    coords = torch.rand(len(pairs), 3, 4) * 0.4 + 0.3
    *_, emb = model.backbone(data['inputs'])
    encoder = model.bbox_head.query_shapes  # bound to the detector's SAM decoder
    assert encoder.decoder is model.mask_head.decoder
    encoder.chunk = 2
    got, kept = encoder(emb, coords, pairs.img_idx, [s.metainfo['img_shape'] for s in samples])
    assert kept.all()
    for p in range(len(pairs)):
        b = int(pairs.img_idx[p])
        h, w = samples[b].metainfo['img_shape']
        box = bbox_cxcywh_to_xyxy(coords[p]) * torch.tensor([w, h, w, h])
        logits, _ = model.mask_head.decoder.predict_masks(emb[b:b + 1], box)
        torch.testing.assert_close(got[p], box_shape_tokens(logits, box, 256, 64)[:, 0],
                                   atol=1e-5, rtol=1e-5)
    losses = model.loss(data['inputs'], samples)
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.bbox_head.shape_mlp[0].weight.grad.abs().sum() > 0
    model.eval()
    data = toy_batch(model, cfg, 'test', [0], False)
    with torch.no_grad():
        res = model.predict(data['inputs'], data['data_samples'])[0].pred_instances
    assert len(res) > 0 and torch.isfinite(res.scores).all()


def test_shape_head_needs_shape_tokens(toy_root):
    with pytest.raises(ValueError, match="dict\\(type='ShapeToken'\\)"):
        build(toy_root, reference_sources=SHAPE['reference_sources'][:2],
              bbox_head=SHAPE['bbox_head'])
    with pytest.raises(ValueError, match='shape_dims'):
        build(toy_root, **dict(SHAPE, bbox_head=dict(SHAPE['bbox_head'], shape_dims=256)))


def test_d4_symmetric_shape_embedding(toy_root):
    """With shape_symmetry='d4', phi is the mean over the grid's 8 rotations/mirrorings, so
    an outline turned by 90 degrees or mirrored embeds exactly alike; 'none' does not."""
    head_cfg = dict(SHAPE['bbox_head'], shape_symmetry='d4')
    _, model = build(toy_root, **dict(SHAPE, bbox_head=head_cfg))
    head = model.bbox_head
    x = torch.rand(3, 64)
    grid = x.reshape(3, 8, 8)
    views = [torch.rot90(m, k, dims=(-2, -1)) for m in (grid, grid.flip(-1)) for k in range(4)]
    want = torch.stack([head.shape_mlp(v.reshape(3, 64)) for v in views]).mean(0)
    torch.testing.assert_close(head.embed_shapes(x), want)
    turned = torch.rot90(grid, 1, dims=(-2, -1)).reshape(3, 64)
    mirrored = grid.flip(-2).reshape(3, 64)
    torch.testing.assert_close(head.embed_shapes(turned), head.embed_shapes(x))
    torch.testing.assert_close(head.embed_shapes(mirrored), head.embed_shapes(x))
    head.shape_symmetry = 'none'
    assert not torch.allclose(head.embed_shapes(turned), head.embed_shapes(x))
    with pytest.raises(ValueError, match="shape_symmetry must be 'none' or 'd4'"):
        build(toy_root, **dict(SHAPE, bbox_head=dict(SHAPE['bbox_head'], shape_symmetry='c8')))


def test_shape_top_k_compares_the_best_queries_of_each_image(toy_root):
    """With shape_top_k=K, SAM segments only the K best-scoring queries of each target (over
    all its pairs), their tokens equal the full computation, and the others get the lowest
    term s' * (-1) + b', without gradient."""
    head_cfg = dict(SHAPE['bbox_head'], shape_top_k=4)
    cfg, model = build(toy_root, **dict(SHAPE, bbox_head=head_cfg))
    data = toy_batch(model, cfg, 'train', [0, 1], True)
    samples = data['data_samples']
    pairs = model.reference_pairs(samples)
    *_, emb = model.backbone(data['inputs'])
    coords = torch.rand(len(pairs), 3, 4) * 0.4 + 0.3
    scores = torch.randn(len(pairs), 3)
    shapes = [s.metainfo['img_shape'] for s in samples]
    encoder = model.bbox_head.query_shapes
    full, _ = encoder(emb, coords, pairs.img_idx, shapes)
    got, kept = encoder(emb, coords, pairs.img_idx, shapes, scores=scores, top_k=4)
    for b in range(2):
        rows = pairs.img_idx == b
        s = scores[rows].flatten()
        want = torch.zeros_like(s, dtype=torch.bool)
        want[s.topk(min(4, s.numel())).indices] = True
        assert torch.equal(kept[rows].flatten(), want)
    torch.testing.assert_close(got[kept], full[kept], atol=1e-5, rtol=1e-5)
    assert (got[~kept] == 0).all() and kept.sum() == 8
    head = model.bbox_head
    h, e = torch.randn(3, 2, 5, 128), torch.randn(2, 128)
    refs = [torch.rand(2, 5, 2) for _ in range(4)]
    qs, rs, pair = torch.rand(2, 5, 64), torch.rand(2, 64), torch.tensor([0, 1])
    mask = torch.zeros(2, 5, dtype=torch.bool)
    mask[0, 1] = mask[1, 3] = True
    head.query_shapes = lambda *a, scores=None, top_k=None: (qs, mask)
    pairs = head_pairs(e, rs, pair)
    cls, _ = head(h, refs, pairs)
    base, _ = head.__class__.__mro__[1].forward(head, h, refs, pairs)
    term = head.shape_logits(qs, (rs, pair))[..., 0]
    floor = head.shape_bias - head.shape_log_scale.exp()
    torch.testing.assert_close(cls[-1, ..., 0][mask], (base[-1, ..., 0] + term)[mask])
    torch.testing.assert_close(cls[-1, ..., 0][~mask], base[-1, ..., 0][~mask] + floor)
    cls[-1, ..., 0][~mask].sum().backward()  # the floor passes no gradient to s', b'
    assert head.shape_bias.grad is None or head.shape_bias.grad.abs().sum() == 0
    with pytest.raises(ValueError, match='shape_top_k'):
        build(toy_root, **dict(SHAPE, bbox_head=dict(SHAPE['bbox_head'], shape_top_k=0)))


def test_kshot_outlines_as_a_prototype_or_the_best_shot(toy_root):
    """k shots of a pair meet a query's outline as the cosine with the mean of their
    embeddings ('mean') or as the best of the k cosines ('max'); at one shot both are that
    shot's cosine."""
    _, model = build(toy_root, **SHAPE)
    head = model.bbox_head
    qs, rs = torch.rand(2, 5, 64), torch.rand(5, 64)
    pair = torch.tensor([0, 1, 0, 1, 1])  # pair 0: shots 0 and 2; pair 1: shots 1, 3, 4
    with torch.no_grad():
        q, e = F.normalize(head.embed_shapes(qs), dim=-1), head.embed_shapes(rs)
        s, b = head.shape_log_scale.exp(), head.shape_bias
        cos = [q[p] @ F.normalize(e[pair == p], dim=-1).T for p in range(2)]  # (Q, k_p)
        proto = [q[p] @ F.normalize(e[pair == p].mean(0), dim=-1) for p in range(2)]
        torch.testing.assert_close(head.shape_logits(qs, (rs, pair))[..., 0],
                                   s * torch.stack(proto) + b)
        head.shape_kshot = 'max'
        best = torch.stack([c.max(1).values for c in cos])
        torch.testing.assert_close(head.shape_logits(qs, (rs, pair))[..., 0], s * best + b)
        one = torch.tensor([0, 1])
        got_max = head.shape_logits(qs, (rs[:2], one))
        head.shape_kshot = 'mean'
        torch.testing.assert_close(got_max, head.shape_logits(qs, (rs[:2], one)))
    assert not torch.allclose(best, torch.stack(proto))
    with pytest.raises(ValueError, match="shape_kshot must be 'mean' or 'max'"):
        build(toy_root, **dict(SHAPE, bbox_head=dict(SHAPE['bbox_head'], shape_kshot='min')))
