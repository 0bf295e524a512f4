"""Center-pivot 4D convolution on correlation tensors (HSNet, Min et al., ICCV 2021, §3.2).

A full 4D kernel over (Ha, Wa, Hb, Wb) costs k^4 weights per channel pair. The center-pivot
kernel keeps only the weights on the two 2D "crosses" through its centre: those whose offset
is zero in the b dims (a 2D kernel over a) or zero in the a dims (a 2D kernel over b). The
4D convolution then equals the sum of two 2D convolutions, which is what makes HSNet cheap:

    out(a, b') = sum_da K_a(da) C(a + da, s b') + sum_db K_b(db) C(a, s b' + db) + bias

Strides ``s`` apply to the b (reference) dims only, as in HSNet's squeezing blocks; the a
(target) dims keep their resolution.

Shape shorthand: N batch, Ci / Co channels, (Ha, Wa) target dims, (Hb, Wb) reference dims.
"""
from typing import Tuple, Union

import torch.nn.functional as F
from torch import Tensor, nn

IntPair = Union[int, Tuple[int, int]]


def _pair(x: IntPair) -> Tuple[int, int]:
    return (x, x) if isinstance(x, int) else tuple(x)


class CenterPivotConv4d(nn.Module):
    """4D convolution whose kernel is non-zero only on its two central 2D slices.

    Args:
        in_channels: Ci.
        out_channels: Co.
        kernel_size: k (odd), the same in the four dims; "same" zero padding k // 2.
        stride: stride of the reference dims (Hb, Wb); the target dims keep stride 1.
        bias: learn a bias (one per 2D branch, i.e. an effective bias ``b_a + b_b``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: IntPair = 1, bias: bool = True) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f'kernel_size must be odd (a centre pivot), got {kernel_size}')
        self.stride = _pair(stride)
        pad = kernel_size // 2
        # conv over the target dims (a), applied at the kept reference positions
        self.conv_a = nn.Conv2d(in_channels, out_channels, kernel_size, padding=pad, bias=bias)
        # conv over the reference dims (b), with the stride
        self.conv_b = nn.Conv2d(in_channels, out_channels, kernel_size, stride=self.stride,
                                padding=pad, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (N, Ci, Ha, Wa, Hb, Wb). Returns (N, Co, Ha, Wa, Hb', Wb'),
        Hb' = ceil(Hb / stride) (the size of a padded strided 2D conv)."""
        if x.dim() != 6:
            raise ValueError(f'CenterPivotConv4d expects (N, C, Ha, Wa, Hb, Wb), got '
                             f'{tuple(x.shape)}')
        n, c, ha, wa, hb, wb = x.shape
        sh, sw = self.stride
        # branch b: 2D conv over (Hb, Wb) for every target position
        xb = x.permute(0, 2, 3, 1, 4, 5).reshape(n * ha * wa, c, hb, wb)
        yb = self.conv_b(xb)
        hb2, wb2 = yb.shape[-2:]
        co = yb.shape[1]
        yb = yb.view(n, ha, wa, co, hb2, wb2).permute(0, 3, 1, 2, 4, 5)
        # branch a: the strided conv keeps reference positions 0, s, 2s, ...: prune to those
        xs = x[..., ::sh, ::sw] if (sh, sw) != (1, 1) else x
        xa = xs.permute(0, 4, 5, 1, 2, 3).reshape(n * hb2 * wb2, c, ha, wa)
        ya = self.conv_a(xa).view(n, hb2, wb2, co, ha, wa).permute(0, 3, 4, 5, 1, 2)
        return ya + yb


def interpolate_4d(x: Tensor, size: Tuple[int, int, int, int]) -> Tensor:
    """Bilinear resize of both 2D halves of a 4D tensor: (N, C, Ha, Wa, Hb, Wb) -> size."""
    n, c, ha, wa, hb, wb = x.shape
    ha2, wa2, hb2, wb2 = size
    if (hb, wb) != (hb2, wb2):
        y = x.reshape(n, c * ha * wa, hb, wb)
        y = F.interpolate(y, (hb2, wb2), mode='bilinear', align_corners=True)
        x = y.view(n, c, ha, wa, hb2, wb2)
    if (ha, wa) != (ha2, wa2):
        y = x.permute(0, 1, 4, 5, 2, 3).reshape(n, c * hb2 * wb2, ha, wa)
        y = F.interpolate(y, (ha2, wa2), mode='bilinear', align_corners=True)
        x = y.view(n, c, hb2, wb2, ha2, wa2).permute(0, 1, 4, 5, 2, 3)
    return x.contiguous()
