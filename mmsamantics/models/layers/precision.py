"""Precision and batch size of forward passes: frozen encoders in bf16 micro-batches, fp32
islands under mixed precision.

Frozen foundation models (SAM, HQ-SAM, SAM 2, DINOv2, ResNet) dominate the compute and
receive no gradient, so they run under bf16 autocast on GPUs (``frozen_autocast='auto'``)
and return float32 features: what follows them (necks, heads, caches) sees the dtype it
always saw. Their inputs are split into micro-batches so that one call never holds the
attention logits of a whole data batch (one ViT-B global-attention logit tensor at 1024 px
is 12 heads x 4096^2 floats = 805 MB per image).

The opposite direction, fp32 inside an autocast region, is for numerics that half precision
breaks: mmdet's focal matching cost (``log(1 - sigmoid(x) + 1e-12)`` is ``-inf`` in fp16 for
logits above ~8, and ``linear_sum_assignment`` then refuses the cost matrix), the losses,
and mmcv kernels that take no bf16.
"""
from contextlib import contextmanager, nullcontext
from typing import Any, Callable, ContextManager, Iterator, Optional

import torch
from torch import Tensor

FROZEN_AUTOCAST_MODES = ('auto', 'bf16', 'off')


def check_frozen_autocast(mode: str) -> str:
    """``mode`` if it is a known ``frozen_autocast`` value (raises at build time otherwise)."""
    if mode not in FROZEN_AUTOCAST_MODES:
        raise ValueError(f'frozen_autocast must be one of {FROZEN_AUTOCAST_MODES}, got {mode!r}')
    return mode


def frozen_autocast_dtype(mode: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype of a frozen encoder on ``device`` (None = full precision).

    Args:
        mode: ``'auto'`` (bf16 on a CUDA device that supports it, fp32 elsewhere: CPU bf16
            matmuls are not faster on most CPUs), ``'bf16'`` (always, also on CPU) or
            ``'off'``.
        device: the device of the encoder's input.
    """
    if check_frozen_autocast(mode) == 'off':
        return None
    if mode == 'auto':
        cuda_bf16 = device.type == 'cuda' and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if cuda_bf16 else None
    return torch.bfloat16


def frozen_autocast(mode: str, device: torch.device) -> ContextManager:
    """``torch.autocast`` for a frozen encoder's forward (see :func:`frozen_autocast_dtype`)."""
    dtype = frozen_autocast_dtype(mode, device)
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def to_float(obj: Any) -> Any:
    """Floating tensors of a (nested) tensor / list / tuple / dict cast to float32."""
    if isinstance(obj, Tensor):
        return obj.float() if obj.is_floating_point() else obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_float(o) for o in obj)
    if isinstance(obj, dict):
        return {k: to_float(v) for k, v in obj.items()}
    return obj


@contextmanager
def fp32_region(device: torch.device) -> Iterator[None]:
    """Disable autocast on ``device``'s type: the block runs in the dtype of its inputs
    (give it float32 tensors, e.g. through :func:`to_float`)."""
    with torch.autocast(device.type, enabled=False):
        yield


def _cat(outs: list) -> Any:
    first = outs[0]
    if isinstance(first, Tensor):
        return torch.cat(outs)
    if isinstance(first, (list, tuple)):
        return type(first)(_cat(list(parts)) for parts in zip(*outs))
    raise TypeError(f'cannot concatenate micro-batch outputs of type {type(first).__name__}')


def micro_batched(fn: Callable[[Tensor], Any], x: Tensor, size: int) -> Any:
    """``fn(x)`` computed ``size`` images at a time, outputs concatenated on dim 0.

    Exact for per-image networks (no batch statistics: frozen encoders are in eval mode).

    Args:
        fn: a per-image network; returns a tensor or (nested) tuples / lists of tensors,
            each batch-first.
        x: (B, ...) input.
        size: images per call; 0 = all at once.
    """
    if size < 0:
        raise ValueError(f'micro-batch size must be >= 0 (0 = no split), got {size}')
    if size == 0 or len(x) <= size:
        return fn(x)
    return _cat([fn(chunk) for chunk in x.split(size)])
