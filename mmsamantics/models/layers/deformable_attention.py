"""mmcv's multi-scale deformable attention made safe for GPU batches and bf16 autocast.

Two constraints of mmcv's CUDA kernel (``ms_deform_attn_forward``) that its pure-PyTorch
CPU path does not have:

* the batch must satisfy ``batch % min(batch, im2col_step) == 0`` (``im2col_step`` = 64 by
  default): InSAM-DETR decodes one batch row per (target, class) pair, so COCO's open mode
  (80 classes) would fail. :func:`im2col_chunks` splits such a batch into at most two
  calls that each satisfy the rule.
* it has fp32 and fp16 kernels only: :class:`FP32DeformableAttention` runs the attention in
  float32 when autocast would give it bf16.
"""
from typing import List

import torch
from mmcv.ops import MultiScaleDeformableAttention
from torch import Tensor, nn

from .precision import fp32_region, to_float


def im2col_chunks(batch: int, im2col_step: int = 64) -> List[slice]:
    """Split a batch into the fewest calls that mmcv's CUDA deformable attention accepts.

    A batch that satisfies ``batch % min(batch, im2col_step) == 0`` stays whole; otherwise
    it becomes a multiple of ``im2col_step`` plus the remainder (< ``im2col_step``, so its
    own ``min`` is itself): 80 -> 64 + 16, 200 -> 192 + 8.

    Args:
        batch: rows of the batch (>= 0).
        im2col_step: the attention modules' ``im2col_step``.

    Returns:
        one or two slices covering ``range(batch)`` in order.
    """
    if im2col_step < 1:
        raise ValueError(f'im2col_step must be >= 1, got {im2col_step}')
    if batch == 0 or batch % min(batch, im2col_step) == 0:
        return [slice(0, batch)]
    cut = batch - batch % im2col_step
    return [slice(0, cut), slice(cut, batch)]


def autocast_is_bf16(device: torch.device) -> bool:
    """Whether autocast is active on ``device``'s type with dtype bfloat16."""
    return (torch.is_autocast_enabled(device.type)
            and torch.get_autocast_dtype(device.type) == torch.bfloat16)


class FP32DeformableAttention(MultiScaleDeformableAttention):
    """:class:`mmcv.ops.MultiScaleDeformableAttention` (same parameters, same results) that
    leaves bf16 autocast for float32: mmcv's CUDA kernel has no bf16 version.

    fp16 autocast is left to mmcv, whose kernel casts sampling locations and weights to the
    dtype of the value. Installed on built models by :meth:`convert` (mmdet's Deformable DETR
    layers construct the mmcv class directly, not through a registry).
    """

    def forward(self, query: Tensor, *args, **kwargs) -> Tensor:
        if not autocast_is_bf16(query.device):
            return super().forward(query, *args, **kwargs)
        with fp32_region(query.device):
            return super().forward(to_float(query), *to_float(args), **to_float(kwargs))

    @classmethod
    def convert(cls, module: nn.Module) -> int:
        """Switch every mmcv deformable attention inside ``module`` to this class in place
        (parameters and state-dict keys unchanged); returns how many were switched."""
        n = 0
        for m in module.modules():
            if type(m) is MultiScaleDeformableAttention:
                m.__class__ = cls
                n += 1
        return n
