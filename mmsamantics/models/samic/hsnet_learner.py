"""HSNet's 4D-convolutional pyramid encoder and 2D context decoder (Min et al. 2021; SAMIC §3.3).

    C_deep  --squeeze--> S_deep ------------------------------.
    C_mid   --squeeze--> S_mid  + up(S_deep) --mix--> M_mid   |
    C_low   --squeeze--> S_low  + up(M_mid)  --mix--> M_low --mean over (Hb, Wb)--> Z
    Z --conv-ReLU-conv-ReLU--> x2 up --conv-ReLU-conv--> up to (H, W) --softmax--> G^t

Squeezing blocks (4D conv + group norm + ReLU, three times) reduce the reference dims with
strides and keep the target dims; mixing blocks (same layers, stride 1) refine the sum of a
layer and the upsampled deeper layer (top-down). The decoder ends with a 2-way softmax whose
foreground probability is the predicted saliency heatmap.

Shape shorthand: P pairs, L_s correlation channels of stage s, (Ha, Wa) / (Hb, Wb) target /
reference dims of a stage, Cm the mixing width, (H, W) the output size.
"""
from typing import List, Sequence, Tuple

import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet.registry import MODELS
from .conv4d import CenterPivotConv4d, interpolate_4d


class Conv4dBlock(nn.Module):
    """Layers of (center-pivot 4D conv, group norm, ReLU).

    Args:
        in_channels: channels of the input 4D tensor.
        channels: output channels of each layer.
        kernel_sizes / strides: per layer; strides act on the reference dims.
        groups: group-norm groups per layer (HSNet: 4).
    """

    def __init__(self, in_channels: int, channels: Sequence[int], kernel_sizes: Sequence[int],
                 strides: Sequence[int], groups: int = 4) -> None:
        super().__init__()
        if not len(channels) == len(kernel_sizes) == len(strides):
            raise ValueError(f'channels {channels}, kernel_sizes {kernel_sizes} and strides '
                             f'{strides} must have one entry per 4D layer')
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        c = in_channels
        for co, k, s in zip(channels, kernel_sizes, strides):
            self.convs.append(CenterPivotConv4d(c, co, k, stride=s))
            self.norms.append(nn.GroupNorm(groups, co))
            c = co

    def forward(self, x: Tensor) -> Tensor:
        """(P, C, Ha, Wa, Hb, Wb) -> (P, C', Ha, Wa, Hb', Wb')."""
        for conv, norm in zip(self.convs, self.norms):
            x = conv(x)
            n, c, ha, wa, hb, wb = x.shape
            # group norm over (channel groups x all four dims), as on a 2D map
            x = norm(x.view(n, c, ha * wa, hb * wb)).view(n, c, ha, wa, hb, wb)
            x = F.relu(x, inplace=True)
        return x


@MODELS.register_module()
class HSNetLearner(BaseModule):
    """Squeeze blocks, top-down mixing, reference-dim averaging and the 2D decoder.

    Defaults are HSNet's ResNet-50 setting with 3 4D layers per block (SAMIC Table 5):
    2,573,794 trainable parameters (paper: "2.6M"; ``tests/test_samic/test_hsnet.py``).

    Args:
        in_channels: correlation channels per stage, shallow to deep (ResNet-50: 4, 6, 3).
        squeeze_channels: output channels of the layers of every squeezing block.
        squeeze_kernels / squeeze_strides: per stage (shallow to deep), per layer.
        mix_channels: width of the mixing blocks and decoder input (Cm).
        mix_layers: 4D layers per mixing block.
        decoder_channels: widths of the two decoder halves (before / after the x2 upsample).
        groups: group-norm groups.
    """

    def __init__(self,
                 in_channels: Sequence[int] = (4, 6, 3),
                 squeeze_channels: Sequence[int] = (16, 64, 128),
                 squeeze_kernels: Sequence[Sequence[int]] = ((5, 5, 3), (5, 3, 3), (3, 3, 3)),
                 squeeze_strides: Sequence[Sequence[int]] = ((4, 4, 2), (4, 2, 2), (2, 2, 2)),
                 mix_layers: int = 3,
                 decoder_channels: Tuple[int, int] = (128, 64),
                 groups: int = 4,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        n = len(in_channels)
        if not (len(squeeze_kernels) == len(squeeze_strides) == n) or n < 1:
            raise ValueError(f'one squeeze kernel/stride list per stage: {n} stages, '
                             f'{len(squeeze_kernels)} kernel and {len(squeeze_strides)} '
                             'stride lists')
        cm = squeeze_channels[-1]
        self.squeeze = nn.ModuleList([
            Conv4dBlock(c, squeeze_channels, k, s, groups)
            for c, k, s in zip(in_channels, squeeze_kernels, squeeze_strides)])
        self.mix = nn.ModuleList([Conv4dBlock(cm, [cm] * mix_layers, [3] * mix_layers,
                                              [1] * mix_layers, groups)
                                  for _ in range(n - 1)])
        d1, d2 = decoder_channels
        self.decoder1 = nn.Sequential(nn.Conv2d(cm, d1, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(d1, d2, 3, padding=1), nn.ReLU(inplace=True))
        self.decoder2 = nn.Sequential(nn.Conv2d(d2, d2, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(d2, 2, 3, padding=1))

    def forward(self, pyramid: List[Tensor], out_size: Tuple[int, int]) -> Tensor:
        """Args:
            pyramid: per stage, shallow to deep, (P, L_s, Ha_s, Wa_s, Hb_s, Wb_s).
            out_size: (H, W) of the heatmap.

        Returns:
            (P, 1, H, W) heatmap in [0, 1] (foreground channel of the softmax).
        """
        if len(pyramid) != len(self.squeeze):
            raise ValueError(f'{len(pyramid)} correlation stages for {len(self.squeeze)} '
                             'squeezing blocks')
        sq = [blk(c) for blk, c in zip(self.squeeze, pyramid)]
        x = sq[-1]
        for i in range(len(sq) - 2, -1, -1):  # top-down: deep into shallow
            x = self.mix[i](sq[i] + interpolate_4d(x, tuple(sq[i].shape[-4:])))
        z = x.mean(dim=(-2, -1))  # average over the reference dims -> (P, Cm, Ha, Wa)
        y = self.decoder1(z)
        y = F.interpolate(y, scale_factor=2, mode='bilinear', align_corners=True)
        y = self.decoder2(y)
        y = F.interpolate(y, tuple(out_size), mode='bilinear', align_corners=True)
        return y.softmax(dim=1)[:, 1:]
