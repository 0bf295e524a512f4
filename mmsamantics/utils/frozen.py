"""One pattern for every frozen foundation model (STYLE rule 5)."""
from torch import nn


def freeze(module: nn.Module) -> nn.Module:
    """Disable gradients and switch to eval mode; returns the module."""
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()
    return module

