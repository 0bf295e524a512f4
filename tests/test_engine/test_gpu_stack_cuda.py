"""The GPU stack on a real GPU (marker ``gpu``: skipped without CUDA; run by
tools/gpu_selfcheck.sh): mmcv's CUDA kernels exist for this GPU and agree with the
pure-PyTorch paths that --allow-pytorch-deform-attn switches to."""
import pytest
import torch

import mmsamantics.engine.gpu_stack as gs
from mmsamantics.engine import set_local_device

pytestmark = pytest.mark.gpu


def test_stack_reports_cuda_ops():
    assert gs.check_gpu_stack().startswith('cuda (mmcv CUDA ops, CUDA ')


def test_deform_attn_kernel_matches_pytorch():
    assert gs.deform_attn_probe(torch.device('cuda')) < 1e-5


def test_focal_loss_fallback_matches_the_kernel():
    """The stand-in installed by use_pytorch_ops equals mmdet's call of mmcv's kernel."""
    from mmdet.models.losses.focal_loss import sigmoid_focal_loss
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(300, 80, generator=g).cuda()
    labels = torch.randint(0, 81, (300, ), generator=g).cuda()
    weight = torch.rand(300, generator=g).cuda()
    ref = sigmoid_focal_loss(pred, labels, weight, 2.0, 0.25, 'sum')
    out = gs._labels_sigmoid_focal_loss(pred, labels, weight, 2.0, 0.25, 'sum')
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_local_rank_device(monkeypatch):
    monkeypatch.setenv('LOCAL_RANK', str(torch.cuda.device_count() - 1))
    dev = set_local_device()
    assert dev.index == torch.cuda.device_count() - 1 == torch.cuda.current_device()
    torch.cuda.set_device(0)
