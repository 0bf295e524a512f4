"""Frozen ResNet features at the end of every residual block, before the final ReLU.

SAMIC (§4, implementation details) and HSNet take, from an ImageNet ResNet-50, the output
of each bottleneck of stages 2-4 BEFORE its last ReLU (4 + 6 + 3 = 13 features at strides
8, 16, 32): the negative part carries information that the ReLU would erase.

Built on mmdet's :class:`mmdet.models.backbones.ResNet` (its key names are torchvision's,
so torchvision / timm ImageNet ``resnet50`` state dicts load directly).

Shape shorthand: N images, (H, W) input side, Cf feature channels.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet.registry import MODELS
from ...utils.checkpoint import load_state_dict_file, load_strict
from ...utils.frozen import freeze
from ..layers.precision import (check_frozen_autocast, frozen_autocast, micro_batched,
                                to_float)

RESNET_HINT = ('Save ImageNet ResNet weights as a plain state dict, e.g. '
               '`torch.save(torchvision.models.resnet50(weights="IMAGENET1K_V1").state_dict(), '
               'path)` (or timm resnet50) on a machine with internet, or set '
               'resnet_checkpoint=None for random weights (toy runs only).')


def _block_pre_relu(block: nn.Module, x: Tensor) -> Tensor:
    """Output of a ResNet residual block before its final ReLU (Bottleneck or BasicBlock)."""
    identity = x if block.downsample is None else block.downsample(x)
    out = block.relu(block.norm1(block.conv1(x)))
    if hasattr(block, 'conv3'):  # Bottleneck: 1x1 -> 3x3 -> 1x1
        out = block.relu(block.norm2(block.conv2(out)))
        out = block.norm3(block.conv3(out))
    else:  # BasicBlock: 3x3 -> 3x3
        out = block.norm2(block.conv2(out))
    return out + identity


@MODELS.register_module()
class SAMICResNetFeatures(BaseModule):
    """Frozen mmdet ResNet returning every residual block's pre-ReLU output of some stages.

    Args:
        depth: ResNet depth (50 in the paper; 18 for quick tests).
        stages: 1-based stages whose blocks are returned (paper: 2, 3, 4).
        checkpoint: local ImageNet state dict (torchvision / timm ``resnet{depth}`` keys;
            ``fc.*`` is ignored), loaded strictly; None = random weights.
        frozen_autocast: ``'auto'`` (bf16 on GPUs, fp32 on the CPU), ``'bf16'`` or
            ``'off'``; features are returned as float32.
        micro_batch: images per call (0 = never split).
    """

    def __init__(self, depth: int = 50, stages: Sequence[int] = (2, 3, 4),
                 checkpoint: Optional[str] = None, frozen_autocast: str = 'auto',
                 micro_batch: int = 4, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not stages or any(s not in (1, 2, 3, 4) for s in stages):
            raise ValueError(f'stages must be a non-empty subset of 1..4, got {stages}')
        self.stages = tuple(sorted(stages))
        self.frozen_autocast = check_frozen_autocast(frozen_autocast)
        self.micro_batch = micro_batch
        self.resnet = MODELS.build(dict(type='ResNet', depth=depth, num_stages=4,
                                        out_indices=(3,), norm_eval=True,
                                        norm_cfg=dict(type='BN', requires_grad=False)))
        if checkpoint is not None:
            state = load_state_dict_file(checkpoint, RESNET_HINT)
            state = {k: v for k, v in state.items() if not k.startswith('fc.')}
            load_strict(self.resnet, state, '', source=checkpoint)
        freeze(self)
        stage_blocks = self.resnet.stage_blocks[:4]
        # stage index (0 = shallowest returned stage) of every returned feature
        self.stage_ids: List[int] = [i for i, s in enumerate(self.stages)
                                     for _ in range(stage_blocks[s - 1])]
        exp = 4 if depth >= 50 else 1
        self.channels: List[int] = [64 * 2 ** (s - 1) * exp for s in self.stages
                                    for _ in range(stage_blocks[s - 1])]

    @property
    def num_per_stage(self) -> Tuple[int, ...]:
        """Features per returned stage (ResNet-50, stages 2-4: (4, 6, 3))."""
        return tuple(self.stage_ids.count(i) for i in range(len(self.stages)))

    def init_weights(self) -> None:
        """Weights are fixed in ``__init__`` (ImageNet or random): the runner's
        ``init_weights`` must not re-initialise the frozen network."""
        self._is_init = True

    def train(self, mode: bool = True) -> 'SAMICResNetFeatures':
        return super().train(False)  # frozen: BN statistics never change

    @torch.no_grad()
    def forward(self, x: Tensor) -> List[Tensor]:
        """Args: x (N, 3, H, W) ImageNet-normalised RGB. Returns the pre-ReLU outputs
        (N, Cf_i, H / s_i, W / s_i) of every block of ``stages``, shallow to deep."""
        with frozen_autocast(self.frozen_autocast, x.device):
            return to_float(micro_batched(self._forward, x, self.micro_batch))

    def _forward(self, x: Tensor) -> List[Tensor]:
        r = self.resnet
        x = r.maxpool(r.relu(r.norm1(r.conv1(x))))
        feats = []
        for s, name in enumerate(r.res_layers[:max(self.stages)], start=1):
            for block in getattr(r, name):
                pre = _block_pre_relu(block, x)
                if s in self.stages:
                    feats.append(pre)
                x = torch.relu(pre)
        return feats
