"""The matcher and SAMIC under CPU bf16 autocast (the stand-in for GPU AMP), and the
precision helpers (fp32 regions, micro-batches, deformable attention under bf16)."""
import pytest
import torch
from mmcv.ops import MultiScaleDeformableAttention
from mmengine.dataset import pseudo_collate

from helpers import matcher_cfg
from mmsamantics.apis import build_dataset, build_model
from mmsamantics.models import SAMImageEncoder
from mmsamantics.models.layers.deformable_attention import FP32DeformableAttention
from mmsamantics.models.layers.precision import (frozen_autocast_dtype, micro_batched,
                                                 to_float)
from test_models.test_samic.test_samic_detector import batch, setup  # noqa: F401 (SAMIC fixture)

BF16 = dict(device_type='cpu', dtype=torch.bfloat16)


def test_matcher_test_step_under_bf16(toy_root):
    cfg = matcher_cfg(toy_root)
    model = build_model(cfg, None, 'cpu')
    ds = build_dataset(cfg, 'test')
    batch = model.data_preprocessor(pseudo_collate([ds[i] for i in range(2)]), False)
    with torch.no_grad(), torch.autocast(**BF16):
        out = model.predict(batch['inputs'], batch['data_samples'])
    for d in out:
        pred = d.pred_instances
        assert len(pred) and pred.scores.dtype == pred.bboxes.dtype == torch.float32
        assert pred.masks.shape[1:] == d.ori_shape and (pred.scores <= 1 + 1e-6).all()


def test_samic_train_and_test_step_under_bf16(setup):
    _, model, ds = setup
    model.train()
    data = batch(model, ds['train'], [0, 1], True)
    with torch.autocast(**BF16):
        losses = model(**data, mode='loss')
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in losses.values())
    model.zero_grad()
    sum(losses.values()).backward()
    assert any(p.grad is not None for p in model.prompter.learner.parameters())
    model.eval()
    with torch.no_grad(), torch.autocast(**BF16):
        out = model(**batch(model, ds['test'], [0, 1], False), mode='predict')
    for d in out:
        assert d.pred_heatmaps.dtype == d.pred_instances.scores.dtype == torch.float32
        assert d.pred_instances.masks.shape[1:] == d.ori_shape


def test_deformable_attention_leaves_bf16_for_fp32():
    torch.manual_seed(0)
    attn = MultiScaleDeformableAttention(embed_dims=32, num_heads=2, num_levels=1,
                                         num_points=2, batch_first=True).eval()
    assert FP32DeformableAttention.convert(torch.nn.Sequential(attn)) == 1
    q, v = torch.randn(3, 5, 32), torch.randn(3, 16, 32)
    kw = dict(reference_points=torch.rand(3, 5, 1, 2), spatial_shapes=torch.tensor([[4, 4]]),
              level_start_index=torch.tensor([0]))
    ref = attn(q, value=v, **kw)
    seen = []
    hook = attn.value_proj.register_forward_hook(lambda m, a, o: seen.append(o.dtype))
    with torch.autocast(**BF16):
        out = attn(q, value=v, **kw)
    hook.remove()
    assert seen == [torch.float32] and out.dtype == torch.float32
    torch.testing.assert_close(out, ref)


def test_precision_helpers():
    assert frozen_autocast_dtype('auto', torch.device('cpu')) is None  # off on the CPU
    assert frozen_autocast_dtype('bf16', torch.device('cpu')) == torch.bfloat16
    assert frozen_autocast_dtype('off', torch.device('cuda')) is None
    with pytest.raises(ValueError, match='frozen_autocast must be one of'):
        SAMImageEncoder(preset='tiny', frozen_autocast='fp16')  # refused when built
    x = torch.arange(10.).view(10, 1)
    calls = []

    def net(t):
        calls.append(len(t))
        return t * 2, (t + 1, [t.long()])

    whole = net(x)
    calls.clear()
    split = micro_batched(net, x, 4)
    assert calls == [4, 4, 2]
    assert torch.equal(split[0], whole[0]) and torch.equal(split[1][1][0], whole[1][1][0])
    nested = to_float({'a': [x.half()], 'b': x.long()})
    assert nested['a'][0].dtype == torch.float32 and nested['b'].dtype == torch.long
