"""Running SAM 3's box RoI pooling without CUDA.

``sam3``'s geometry encoder moves a 4-element scale tensor to the boxes' device through
pinned host memory (``SequenceGeometryEncoder._encode_boxes``: ``scale.pin_memory().to(...,
non_blocking=True)``); pinning needs a CUDA driver, so the encoder fails on a CPU-only
machine although nothing else in it needs CUDA. :func:`pinning_optional` makes
``Tensor.pin_memory`` return the tensor itself while no CUDA device exists: the values are
the same, only the (irrelevant, 16-byte) asynchronous copy is lost. With CUDA it changes
nothing.
"""
from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def pinning_optional() -> Iterator[None]:
    """Within the block, ``Tensor.pin_memory`` is the identity when CUDA is unavailable."""
    if torch.cuda.is_available():
        yield
        return
    original = torch.Tensor.pin_memory
    torch.Tensor.pin_memory = lambda self, *args, **kwargs: self
    try:
        yield
    finally:
        torch.Tensor.pin_memory = original
