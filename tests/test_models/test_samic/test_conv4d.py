"""Center-pivot 4D convolution against a naive 4D convolution written from its definition."""
import itertools

import numpy as np
import pytest
import torch

from mmsamantics.models.samic import CenterPivotConv4d, interpolate_4d


def naive_conv4d(x: np.ndarray, w: np.ndarray, bias: np.ndarray, stride: int) -> np.ndarray:
    """Full 4D cross-correlation, zero "same" padding, stride on the last two dims only.

    x (N, Ci, A1, A2, B1, B2), w (Co, Ci, k, k, k, k); explicit loops over every output
    position and kernel offset.
    """
    n, ci, a1, a2, b1, b2 = x.shape
    co, _, k = w.shape[:3]
    p = k // 2
    xp = np.pad(x, [(0, 0), (0, 0)] + [(p, p)] * 4)
    o1, o2 = (b1 + 2 * p - k) // stride + 1, (b2 + 2 * p - k) // stride + 1
    out = np.zeros((n, co, a1, a2, o1, o2))
    for i, j, u, v in itertools.product(range(a1), range(a2), range(o1), range(o2)):
        patch = xp[:, :, i:i + k, j:j + k, u * stride:u * stride + k, v * stride:v * stride + k]
        out[:, :, i, j, u, v] = np.einsum('ncabde,ocabde->no', patch, w) + bias
    return out


@pytest.mark.parametrize('stride,k', [(1, 3), (2, 3), (2, 5)])
def test_center_pivot_equals_4d_conv_with_a_cross_shaped_kernel(stride, k):
    torch.manual_seed(0)
    conv = CenterPivotConv4d(2, 3, k, stride=stride).double()
    x = torch.randn(2, 2, 4, 5, 6, 5, dtype=torch.double)
    out = conv(x).detach().numpy()
    # the equivalent full 4D kernel: K_a on the slice b = centre, K_b on the slice a = centre
    c = k // 2
    w = np.zeros((3, 2, k, k, k, k))
    w[:, :, :, :, c, c] += conv.conv_a.weight.detach().numpy()
    w[:, :, c, c, :, :] += conv.conv_b.weight.detach().numpy()
    bias = (conv.conv_a.bias + conv.conv_b.bias).detach().numpy()
    ref = naive_conv4d(x.numpy(), w, bias, stride)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-9)


def test_conv4d_rejects_bad_input():
    with pytest.raises(ValueError, match='odd'):
        CenterPivotConv4d(1, 1, 4)
    with pytest.raises(ValueError, match='Ha, Wa, Hb, Wb'):
        CenterPivotConv4d(1, 1, 3)(torch.zeros(1, 1, 3, 3))


def test_interpolate_4d_resizes_each_half_like_2d_bilinear():
    x = torch.randn(1, 2, 3, 4, 2, 2, dtype=torch.double)
    y = interpolate_4d(x, (6, 8, 2, 2))
    # every reference position is a plain 2D bilinear resize of its target map
    ref = torch.nn.functional.interpolate(x[..., 1, 0], (6, 8), mode='bilinear',
                                          align_corners=True)
    torch.testing.assert_close(y[..., 1, 0], ref)
    assert interpolate_4d(x, (3, 4, 5, 5)).shape == (1, 2, 3, 4, 5, 5)
