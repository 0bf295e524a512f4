"""Reference banks: the features of a fixed reference set, computed once and shared.

A bank is a ``torch.save``d dict (loadable with ``weights_only=True``)::

    keys       list[str]  (R,) reference keys, as the dataset names them
    labels     list[str]  (R,) class name of each reference
    tokens     Tensor     (R, T, D) per-reference features: SAM mask tokens of each reference
                          box (InSAM-DETR), or (R, 1, C) DINOv2 masked-average features
                          (the training-free matcher); or a tuple of such (R, ...) tensors
                          (SAMIC: one ResNet map per level; SAM 3: exemplar crop pixels as
                          uint8 and their geometry)
    signature  str        fingerprint of the weights + preprocessing that made the features
                          (:mod:`mmsamantics.structures.signature`)
    meta       dict       where the references came from (reference-set file, seed, shots)

k-shot averaging happens in the detector (``kshot_average``), so the same bank serves every
k up to the number of references it holds, and its predictions equal re-encoding.
"""
import os
import os.path as osp
from typing import List, Optional, Sequence, Union

import torch
from torch import Tensor

from ..utils.checkpoint import MissingResourceError

_FIELDS = ('keys', 'labels', 'tokens', 'signature', 'meta')


def save_reference_bank(path: str, keys: List[str], labels: List[str],
                        tokens: Union[Tensor, Sequence[Tensor]], signature: str,
                        meta: Optional[dict] = None) -> None:
    """Write a bank (atomically: temporary file, then rename); ``tokens`` is one (R, ...)
    tensor or a tuple of them."""
    parts = tuple(tokens) if isinstance(tokens, (tuple, list)) else (tokens,)
    if not (len(keys) == len(labels)) or any(len(t) != len(keys) for t in parts):
        raise ValueError(f'{len(keys)} keys, {len(labels)} labels, '
                         f'{[len(t) for t in parts]} token sets')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.{os.getpid()}.tmp'
    tokens = (tuple(t.detach().cpu() for t in parts) if isinstance(tokens, (tuple, list))
              else tokens.detach().cpu())
    torch.save(dict(keys=list(keys), labels=list(labels), tokens=tokens,
                    signature=signature, meta=dict(meta or {})), tmp)
    os.replace(tmp, path)


def load_reference_bank(path: str) -> dict:
    """Read a bank written by :func:`save_reference_bank`, with errors that say what to do."""
    if not osp.isfile(path):
        raise MissingResourceError(
            f'reference bank not found: {path!r}. Create it with `python '
            'tools/misc/encode_references.py CONFIG CHECKPOINT --ref-set REFS.json --out '
            f'{path}`.')
    bank = torch.load(path, map_location='cpu', weights_only=True)
    if not isinstance(bank, dict) or any(f not in bank for f in _FIELDS):
        raise ValueError(f'{path!r} is not a reference bank (expected the fields {_FIELDS}); '
                         'was it written by tools/misc/encode_references.py?')
    return bank
