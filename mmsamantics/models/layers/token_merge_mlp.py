"""Token-merge MLP of InSAM-DETR (Espinosa et al., "There is no SAMantics!", Fig. 2)."""
from typing import Optional, Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet.registry import MODELS


@MODELS.register_module()
class TokenMergeMLP(BaseModule):
    """Flatten T reference tokens and map them to one query-sized embedding.

    ``(R, T, C) -> flatten (R, T*C) -> [Linear -> GELU] x len(hidden_dims) -> Linear -> (R, E)``.
    The paper's head (T=5 HQ-SAM tokens, C=256, hidden 1024, 1024, E=256) has 2,623,744
    parameters; with plain SAM, T=4.

    Args:
        num_tokens: T, tokens per reference.
        token_dim: C, width of each token (SAM's prompt width).
        hidden_dims: widths of the hidden layers.
        out_dim: E, the detector's query width.
    """

    def __init__(self,
                 num_tokens: int = 4,
                 token_dim: int = 256,
                 hidden_dims: Sequence[int] = (1024, 1024),
                 out_dim: int = 256,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_tokens = num_tokens
        self.token_dim = token_dim
        dims = [num_tokens * token_dim, *hidden_dims]
        layers = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.GELU()]
        layers.append(nn.Linear(dims[-1], out_dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, tokens: Tensor) -> Tensor:
        """Args: tokens (R, T, C). Returns (R, E)."""
        if tokens.shape[1:] != (self.num_tokens, self.token_dim):
            raise ValueError(f'expected reference tokens (R, {self.num_tokens}, '
                             f'{self.token_dim}), got {tuple(tokens.shape)}: leave '
                             'token_merge.num_tokens / token_dim to the detector, which '
                             'derives them from its reference sources')
        return self.mlp(torch.flatten(tokens, 1))
