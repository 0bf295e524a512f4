"""CPU stand-ins for InSAM-DETR's GPU failure modes: more pairs than mmcv's CUDA deformable
attention takes in one call, and mixed precision (fp16 matching costs, bf16 kernels)."""
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.structures import InstanceData

from mmdet.registry import TASK_UTILS
from mmsamantics.models.detectors import ReferencePairs
from mmsamantics.models.detectors.insam_detr_batching import head_fp32
from mmsamantics.models.detectors.insam_detr_pairs import pair_samples
from mmsamantics.models.layers.deformable_attention import (FP32DeformableAttention,
                                                            im2col_chunks)
from test_models.test_detectors.test_insam_detr import _batch, setup  # noqa: F401 (shared fixture)


def test_im2col_chunk_rule():
    # the CUDA kernel's rule: batch % min(batch, step) == 0 for every call
    for n in range(0, 300):
        chunks = im2col_chunks(n, 64)
        assert len(chunks) <= 2 and sum(c.stop - c.start for c in chunks) == n
        assert all((c.stop - c.start) % min(c.stop - c.start, 64) == 0
                   for c in chunks if c.stop > c.start)
    assert im2col_chunks(80) == [slice(0, 64), slice(64, 80)]
    assert im2col_chunks(128) == [slice(0, 128)] and im2col_chunks(7) == [slice(0, 7)]
    with pytest.raises(ValueError, match='im2col_step'):
        im2col_chunks(3, 0)


def test_80_pairs_in_chunks_equal_one_call(setup, monkeypatch):
    """COCO open mode: P = 80 pairs decoded as 64 + 16 give the boxes of one call."""
    cfg, model, train, val = setup
    model.eval()
    data = _batch(model, val, [0, 1], False)
    samples = data['data_samples']
    torch.manual_seed(1)
    pairs = ReferencePairs(torch.arange(80) % 2, torch.zeros(80, dtype=torch.long),
                           torch.randn(80, model.embed_dims))
    feats, _ = model._target_features(data['inputs'], samples)
    calls = []
    orig = model.forward_decoder
    monkeypatch.setattr(model, 'forward_decoder',
                        lambda **kw: calls.append(len(kw['query'])) or orig(**kw))

    def boxes():
        with torch.no_grad():
            out = model.forward_transformer(feats, samples, pairs)
            per_pair = model.bbox_head.predict(
                **out, rescale=False, batch_data_samples=[samples[i % 2] for i in range(80)])
        return out, torch.stack([r.bboxes for r in per_pair])

    chunked, box_chunked = boxes()
    assert calls == [64, 16]
    calls.clear()
    for m in model.decoder.modules():  # one call: a step that divides 80
        if hasattr(m, 'im2col_step'):
            monkeypatch.setattr(m, 'im2col_step', 80)
    whole, box_whole = boxes()
    assert calls == [80]
    torch.testing.assert_close(chunked['hidden_states'], whole['hidden_states'],
                               atol=1e-5, rtol=1e-5)
    assert len(chunked['references']) == len(whole['references'])
    torch.testing.assert_close(box_chunked, box_whole, atol=1e-4, rtol=1e-5)


def test_fp16_focal_matching_cost_gives_a_finite_assignment(setup):
    """fp16 logits > 8: mmdet's focal cost is -inf in half precision; the head's loss in
    fp32 (head_fp32) assigns and gives finite losses."""
    cfg, model, train, val = setup
    cost = TASK_UTILS.build(dict(type='FocalLossCost', weight=2.0))
    logits = torch.full((5, 1), 9.0, dtype=torch.float16)
    gt = InstanceData(labels=torch.zeros(3, dtype=torch.long))
    raw = cost(InstanceData(scores=logits), gt)
    assert not torch.isfinite(raw).all()  # what half precision does to the cost
    model.train()
    data = _batch(model, train, [0, 1], True)
    samples = data['data_samples']
    feats, _ = model._target_features(data['inputs'], samples)
    pairs = model.reference_pairs(samples)
    head_inputs = model.forward_transformer(feats, samples, pairs)
    head_inputs = {k: (v.half() if k == 'hidden_states' else v) for k, v in head_inputs.items()}
    biases = [b.bias.detach().clone() for b in model.bbox_head.cls_branches]
    with torch.no_grad():
        for branch in model.bbox_head.cls_branches:
            branch.bias.fill_(9.0)  # every logit > 8
        try:
            losses = head_fp32(model.bbox_head.loss, head_inputs,
                               batch_data_samples=pair_samples(samples, pairs, True))
        finally:
            for branch, b in zip(model.bbox_head.cls_branches, biases):
                branch.bias.copy_(b)
    assert all(torch.isfinite(v).all() for v in losses.values())


def test_amp_config_train_step_under_cpu_bf16_autocast(setup, monkeypatch):
    """``tools/train.py --amp`` (AmpOptimWrapper), bf16: one optimiser step on the CPU."""
    cfg, model, train, val = setup
    assert all(type(m) is FP32DeformableAttention for m in model.modules()
               if hasattr(m, 'im2col_step'))
    from mmengine.optim import build_optim_wrapper
    from mmengine.optim.optimizer import amp_optimizer_wrapper
    # AmpOptimWrapper refuses to build without a GPU; its autocast runs on the CPU too
    monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    optim = build_optim_wrapper(model, dict(cfg.optim_wrapper, type='AmpOptimWrapper',
                                            dtype='bfloat16'))
    model.train()
    before = model.token_merge.mlp[0].weight.detach().clone()
    data = pseudo_collate([train[i] for i in (0, 1)])
    seen = []
    orig = model.bbox_head.loss_by_feat
    monkeypatch.setattr(model.bbox_head, 'loss_by_feat', lambda *a, **k: seen.append(
        (torch.is_autocast_enabled('cpu'), a[0].dtype)) or orig(*a, **k))
    amp = []
    hook = model.neck.register_forward_pre_hook(
        lambda m, a: amp.append(torch.is_autocast_enabled('cpu')))
    try:
        log = model.train_step(data, optim)
    finally:
        hook.remove()
    assert amp == [True]  # the model ran under autocast...
    assert seen == [(False, torch.float32)]  # ...but matching and losses in fp32
    assert all(torch.isfinite(v) for v in log.values())
    assert not torch.equal(before, model.token_merge.mlp[0].weight)
    model.zero_grad()


def test_insam_detr_test_step_under_cpu_bf16_autocast(setup):
    cfg, model, train, val = setup
    model.eval()
    data = _batch(model, val, [0, 1], False)
    with torch.no_grad():
        ref = model.predict(data['inputs'], data['data_samples'])
        ref = [(d.pred_instances.bboxes.clone(), d.pred_instances.scores.clone()) for d in ref]
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = model.predict(data['inputs'], data['data_samples'])
    for d, (boxes, scores) in zip(out, ref):
        pred = d.pred_instances
        assert pred.bboxes.dtype == torch.float32 and len(pred) == len(boxes)
        assert pred.masks.shape[1:] == d.ori_shape
        # bf16 encoders and decoder: the same detections up to bf16 rounding
        torch.testing.assert_close(pred.scores.sort()[0], scores.sort()[0],
                                   atol=0.05, rtol=0)


@pytest.mark.gpu
def test_80_pairs_and_bf16_on_the_cuda_kernel(setup):
    """On a GPU: mmcv's CUDA deformable attention takes P = 80 pairs (chunked) and bf16
    autocast (fp32 inside), with the CPU's boxes."""
    cfg, model, train, val = setup
    model.eval()
    data = _batch(model, val, [0, 1], False)
    pairs = ReferencePairs(torch.arange(80) % 2, torch.zeros(80, dtype=torch.long),
                           torch.randn(80, model.embed_dims))

    def hidden(m, device, **autocast):
        samples = [s.to(device) for s in data['data_samples']]
        p = ReferencePairs(pairs.img_idx.to(device), pairs.labels.to(device),
                           pairs.embeds.to(device))
        with torch.no_grad(), torch.autocast(device, enabled=bool(autocast), **autocast):
            feats, _ = m._target_features(data['inputs'].to(device), samples)
            return m.forward_transformer(feats, samples, p)['hidden_states'].float().cpu()

    cpu = hidden(model, 'cpu')
    gpu_model = model.to('cuda')
    try:
        torch.testing.assert_close(hidden(gpu_model, 'cuda'), cpu, atol=1e-3, rtol=1e-3)
        bf16 = hidden(gpu_model, 'cuda', dtype=torch.bfloat16)
        assert torch.isfinite(bf16).all() and (bf16 - cpu).abs().mean() < 0.05
    finally:
        model.to('cpu')


def test_pre_encoded_tokens_with_image_targets(setup, monkeypatch):
    """Image targets + reference tokens from a cache (own metainfo key, no feature cache):
    the training step runs SAM on the targets only, with the losses of re-encoding."""
    cfg, model, train, val = setup
    model.train()
    data = _batch(model, train, [0, 1], True)
    samples = data['data_samples']
    model.reference_store.reset()
    torch.manual_seed(0)
    fresh = model(**data, mode='loss')
    for ds in samples:  # what LoadCachedReferenceTokens + PackInContextDetInputs give
        with torch.no_grad():
            tok = model.mask_head.decoder.mask_tokens(model.backbone(ds.ref_inputs)[-1],
                                                      ds.ref_instances.bboxes)
        ds.ref_tokens = tok
        ds.set_metainfo(dict(ref_tokens_signature=model.cache_signature))
        del ds.ref_inputs
    model.reference_store.reset()
    calls = []
    orig = model.backbone.forward
    monkeypatch.setattr(model.backbone, 'forward', lambda x: calls.append(len(x)) or orig(x))
    torch.manual_seed(0)
    cached = model(**data, mode='loss')
    assert calls == [2]  # the two targets, no reference
    for k in fresh:
        torch.testing.assert_close(cached[k], fresh[k], atol=1e-5, rtol=1e-5, msg=k)
    samples[0].set_metainfo(dict(ref_tokens_signature='0' * 16))
    with pytest.raises(ValueError, match='cached reference tokens'):
        model(**data, mode='loss')
