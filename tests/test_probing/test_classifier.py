"""The probe classifier as configured: top-1/top-5 against numpy, and a train step that
moves the linear head and nothing else."""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

from helpers import TOY_PROBES, numpy_topk, toy_probe_cfg


def test_accuracy_metric_matches_numpy():
    from mmpretrain.registry import METRICS
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(57, 12))  # continuous: no ties
    # LinearClsHead hands the metric softmax scores (Accuracy's default thrs=0 counts a
    # top-k hit only when its score is > 0, always true for probabilities)
    scores = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    labels = rng.integers(0, 12, size=57)
    evaluator = Config.fromfile(TOY_PROBES['sam-tiny']).val_evaluator
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        metric = METRICS.build(evaluator)
    samples = [dict(pred_score=torch.from_numpy(s), gt_label=torch.tensor([int(y)]))
               for s, y in zip(scores, labels)]
    metric.process([], samples)
    out = metric.evaluate(len(samples))
    assert out['accuracy/top1'] == pytest.approx(numpy_topk(scores, labels, 1), abs=1e-4)
    assert out['accuracy/top5'] == pytest.approx(numpy_topk(scores, labels, 5), abs=1e-4)
    assert 0 < out['accuracy/top1'] < out['accuracy/top5'] < 100


def test_train_step_moves_only_the_head(toy_cls_root):
    from mmengine.runner import Runner
    from mmpretrain.registry import MODELS
    cfg = toy_probe_cfg('sam-tiny', toy_cls_root)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
        model.init_weights()
        loader = Runner.build_dataloader(cfg.train_dataloader)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    frozen = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    # zero-initialised head (Constant init): deterministic, independent of the encoder RNG
    assert torch.count_nonzero(model.head.fc.weight) == 0
    model.train()
    assert not model.backbone.encoder.training
    for _, batch in zip(range(2), loader):
        losses = model.train_step(batch, optim)
    assert torch.isfinite(losses['loss'])
    assert torch.count_nonzero(model.head.fc.weight) > 0
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, frozen[k]), f'frozen weight {k} changed'
    assert all(p.grad is None for p in model.backbone.parameters())


def test_init_weights_keeps_loaded_encoder_weights(toy_cls_root, tmp_path):
    # timm models have their own init_weights(); mmengine's would reach it and overwrite
    # the loaded checkpoint if the probe backbone did not stop the recursion
    from mmpretrain.registry import MODELS
    cfg = toy_probe_cfg('dinov2-tiny', toy_cls_root)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        src = MODELS.build(cfg.model)
        path = str(tmp_path / 'dinov2_tiny.pth')
        torch.save(src.backbone.encoder.state_dict(), path)
        cfg.model.backbone.checkpoint = path
        model = MODELS.build(cfg.model)
    model.init_weights()
    for k, v in src.backbone.encoder.state_dict().items():
        assert torch.equal(model.backbone.encoder.state_dict()[k], v), k
