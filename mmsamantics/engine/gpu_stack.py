"""Check, before a run starts, that the GPU stack can run the models it is about to build.

Two broken installs look like working ones until deep inside the first iteration:

* **a torch that cannot see the GPU** (a CUDA build of torch newer than the NVIDIA driver,
  or a CPU-only torch on a GPU machine): ``torch.cuda.is_available()`` is False, and a
  launcher that falls back to CPU would train for days on the wrong device;
* **mmcv without CUDA ops** (built where nvcc or the GPU was not visible): mmcv's
  ``MultiScaleDeformableAttention`` and mmdet's ``FocalLoss`` call kernels that do not exist,
  or were compiled for another GPU architecture ("no kernel image is available").

:func:`check_gpu_stack` turns each into one :class:`GPUStackError` naming the fix, and runs
one deformable-attention op on the GPU so a wheel built for another architecture is caught
too. :func:`use_pytorch_ops` is the explicit way out for a user without nvcc: mmcv's
pure-PyTorch deformable attention (``multi_scale_deformable_attn_pytorch``, slow and
memory-hungry) and mmdet's PyTorch focal loss.
"""
import glob
import os
import warnings
from typing import Optional, Tuple

import torch
import torch.nn.functional as F

FIX_OPS = ('rebuild mmcv with CUDA ops: `MMSAM_FORCE_CUDA=1 bash tools/setup_env.sh` (needs '
           'nvcc of the CUDA toolkit torch was built with; TORCH_CUDA_ARCH_LIST picks the GPU '
           'architectures, docs/gpu.md), or pass --allow-pytorch-deform-attn to run mmcv\'s '
           'pure-PyTorch deformable attention on purpose (slow)')


class GPUStackError(RuntimeError):
    """The installed torch / mmcv cannot run on the GPUs of this machine."""


def visible_nvidia_gpus() -> int:
    """NVIDIA GPUs this process can open, asked without torch: the ``/dev/nvidia<N>`` device
    nodes (present only where the driver grants access, also inside containers, whereas
    ``/proc/driver/nvidia`` shows the host's GPUs in any container).

    ``CUDA_VISIBLE_DEVICES`` set to an empty string or ``-1`` hides them on purpose (0).
    """
    hidden = os.environ.get('CUDA_VISIBLE_DEVICES')
    if hidden is not None and hidden.strip() in ('', '-1'):
        return 0
    return len(glob.glob('/dev/nvidia[0-9]*'))


def mmcv_cuda_version() -> Optional[str]:
    """CUDA version mmcv's ops were compiled with; None for a CPU-only build or no ops."""
    try:
        from mmcv.ops import get_compiling_cuda_version
    except ImportError:
        return None
    version = get_compiling_cuda_version()
    return None if version in (None, '', 'not available') else str(version)


def _cuda_is_available() -> Tuple[bool, str]:
    """``torch.cuda.is_available()`` and the reason torch gives when it is False."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        ok = torch.cuda.is_available()
    return ok, ' '.join(str(w.message).split('\n')[0].rstrip('.') for w in caught)


def deform_attn_probe(device: torch.device) -> float:
    """Run mmcv's CUDA deformable attention once on ``device`` against its PyTorch path.

    Shapes (batch 2, 1 level of 4x4, 2 heads of 8 channels, 3 queries, 2 points) are tiny:
    the call checks that the kernel exists for this GPU, not its speed.

    Returns:
        Max absolute difference to ``multi_scale_deformable_attn_pytorch``.
    """
    from mmcv.ops.multi_scale_deform_attn import (MultiScaleDeformableAttnFunction,
                                                  multi_scale_deformable_attn_pytorch)
    g = torch.Generator().manual_seed(0)
    shapes = torch.tensor([[4, 4]], dtype=torch.long)
    value = torch.rand(2, 16, 2, 8, generator=g)
    loc = torch.rand(2, 3, 2, 1, 2, 2, generator=g)
    attn = torch.rand(2, 3, 2, 1, 2, generator=g).softmax(-1)
    ref = multi_scale_deformable_attn_pytorch(value, shapes, loc, attn)
    out = MultiScaleDeformableAttnFunction.apply(
        value.to(device), shapes.to(device), torch.zeros(1, dtype=torch.long, device=device),
        loc.to(device), attn.to(device), 64)
    return float((out.cpu() - ref).abs().max())


def check_gpu_stack(allow_pytorch_deform_attn: bool = False) -> str:
    """Stop with one message when torch or mmcv cannot run on the visible GPUs.

    Args:
        allow_pytorch_deform_attn: with CPU-only mmcv ops on a GPU machine, switch to the
            pure-PyTorch operators (:func:`use_pytorch_ops`) instead of stopping.

    Returns:
        One line saying what will run: ``'cpu'``, ``'cuda (mmcv CUDA ops, CUDA 12.8)'`` or
        ``'cuda (pure-PyTorch deformable attention)'``.

    Raises:
        GPUStackError: a GPU is visible but torch cannot use it; or mmcv has no CUDA ops
            (and ``allow_pytorch_deform_attn`` is False); or its kernel fails on this GPU.
    """
    ok, reason = _cuda_is_available()
    if not ok:
        n = visible_nvidia_gpus()
        if n == 0:
            return 'cpu'
        if torch.version.cuda is None:
            raise GPUStackError(
                f'{n} NVIDIA GPU(s) are visible but torch {torch.__version__} is a CPU-only '
                'build: install the CUDA build (`bash tools/setup_env.sh` does), or hide the '
                'GPUs with CUDA_VISIBLE_DEVICES= to run on CPU on purpose')
        raise GPUStackError(
            f'{n} NVIDIA GPU(s) are visible but torch {torch.__version__} (built for CUDA '
            f'{torch.version.cuda}) cannot use them{": " + reason if reason else ""}. The '
            f'NVIDIA driver is most likely older than CUDA {torch.version.cuda} needs '
            '(`nvidia-smi` prints the newest CUDA the driver supports): update the driver, or '
            'install a torch built for the driver\'s CUDA; to run on CPU on purpose, set '
            'CUDA_VISIBLE_DEVICES=')
    cuda_ops = mmcv_cuda_version()
    if cuda_ops is None:
        if not allow_pytorch_deform_attn:
            raise GPUStackError(
                f'torch sees {torch.cuda.device_count()} GPU(s) but the installed mmcv was '
                f'built without CUDA ops (deformable attention and focal loss would fail on '
                f'the first step): {FIX_OPS}')
        use_pytorch_ops()
        return 'cuda (pure-PyTorch deformable attention and focal loss)'
    device = torch.device('cuda', torch.cuda.current_device())
    try:
        err = deform_attn_probe(device)
    except RuntimeError as e:
        cap = '.'.join(map(str, torch.cuda.get_device_capability(device)))
        raise GPUStackError(
            f'mmcv\'s CUDA deformable attention fails on {torch.cuda.get_device_name(device)} '
            f'(compute capability {cap}): {str(e).splitlines()[0]}. Rebuild mmcv for it: '
            f'`MMSAM_FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST={cap} bash tools/setup_env.sh`') from e
    if err > 1e-4:
        raise GPUStackError(f'mmcv\'s CUDA deformable attention differs from its PyTorch path '
                            f'by {err:.2e} on a tiny input: {FIX_OPS}')
    return f'cuda (mmcv CUDA ops, CUDA {cuda_ops})'


def _labels_sigmoid_focal_loss(pred, target, weight=None, gamma=2.0, alpha=0.25,
                               reduction='mean', avg_factor=None):
    """mmdet's ``sigmoid_focal_loss`` (class labels; label C = background) in PyTorch."""
    from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss
    num_classes = pred.size(1)
    one_hot = F.one_hot(target, num_classes=num_classes + 1)[:, :num_classes].type_as(pred)
    return py_sigmoid_focal_loss(pred, one_hot, weight, gamma, alpha, reduction, avg_factor)


def use_pytorch_ops() -> None:
    """Route mmcv's deformable attention and mmdet's focal loss to their PyTorch code.

    mmcv picks its CUDA kernel when ``IS_CUDA_AVAILABLE`` (read at call time from its
    module) and the input is on a GPU; mmdet's ``FocalLoss`` calls the module-level
    ``sigmoid_focal_loss`` on GPU inputs. Both are replaced for this process.
    """
    import mmcv.ops.multi_scale_deform_attn as msda
    import mmdet.models.losses.focal_loss as focal
    msda.IS_CUDA_AVAILABLE = False
    focal.sigmoid_focal_loss = _labels_sigmoid_focal_loss
