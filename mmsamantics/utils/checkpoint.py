"""Strict, readable loading of third-party weights, and safe ``--resume`` with torch >= 2.6."""
import os
import os.path as osp
from typing import Dict, List

import torch
from torch import nn


class MissingResourceError(FileNotFoundError):
    """A weight file or dataset a config points to does not exist.

    Raised at start-up (model or dataset build) with a message that names the file and
    says how to obtain it, so tools can print one line instead of a deep traceback.
    """


# the folder holding the package: a source checkout's root, where configs/, checkpoints/ and
# data/ are (relative paths in the project's configs are written from there)
PROJECT_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def where_looked(path: str) -> str:
    """For a missing relative ``path``: the folder it was looked up in (the working folder)
    and, when the project's folder has it, that it is there; ``''`` for other paths."""
    if not path or osp.isabs(path) or '://' in path:
        return ''
    text = f'looked up from the working folder {os.getcwd()!r}'
    if osp.exists(osp.join(PROJECT_ROOT, path)):
        text += (f'; the project folder {PROJECT_ROOT!r} has it: run from there, or give its '
                 'absolute path')
    return text


def _read_tensors(path: str):
    """``torch.load`` memory-mapped: a module takes its part of a large file (SAM 3's
    backbone, decoder and exemplar encoder each read ``sam3.pt``) without reading the rest;
    files in the pre-1.6 format cannot be mapped and are read whole."""
    try:
        return torch.load(path, map_location='cpu', weights_only=True, mmap=True)
    except RuntimeError as e:
        if 'mmap' not in str(e):
            raise
        return torch.load(path, map_location='cpu', weights_only=True)


def load_state_dict_file(path: str, hint: str = '') -> Dict[str, torch.Tensor]:
    """Load a plain state dict (``weights_only=True``) from a local file.

    Args:
        path: local path of a ``.pth`` file.
        hint: where to get the file, appended to the error message when it is missing.

    Returns:
        The state dict; a ``{'state_dict': ...}`` or ``{'model': ...}`` wrapper is unwrapped.
    """
    if not osp.isfile(path):
        where = where_looked(path)
        if 'project folder' in where:
            hint = ''  # it exists: how to create it would mislead
        raise MissingResourceError(f'checkpoint file not found: {path!r}'
                                   f'{f" ({where})" if where else ""}. {hint}'.strip())
    try:
        state = _read_tensors(path)
    except Exception as e:  # corrupt file, pickle with code, ...
        raise RuntimeError(f'could not read checkpoint {path!r}: {e}. '
                           'Re-download it; third-party weights must be a plain '
                           'state dict of tensors.') from e
    for key in ('state_dict', 'model'):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise RuntimeError(f'checkpoint {path!r} holds a {type(state).__name__}, '
                           'not a state dict')
    return state


def format_keys(keys: List[str], limit: int = 10) -> str:
    """The first ``limit`` keys, comma-separated, with a count of the rest."""
    return ', '.join(keys[:limit]) + (f' (+{len(keys) - limit} more)' if len(keys) > limit
                                      else '')


def describe_mismatch(missing: List[str], unexpected: List[str], shapes: List[str],
                      limit: int = 10) -> str:
    """'missing keys: ...; unexpected keys: ...; shape mismatches: ...' (empty parts out)."""
    parts = [f'{what}: {format_keys(keys, limit)}' for what, keys in (
        ('missing keys', missing), ('unexpected keys', unexpected),
        ('shape mismatches', shapes)) if keys]
    return '; '.join(parts)


def load_strict(module: nn.Module, state: Dict[str, torch.Tensor],
                prefix: str = '', source: str = 'checkpoint') -> None:
    """Load ``state`` (keys starting with ``prefix``) into ``module`` strictly.

    Missing or unexpected keys, and shape mismatches, raise an error that names them
    (first 10 of each), instead of torch's wall of text or a silent partial load.
    """
    sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    if not sub:
        raise RuntimeError(f'{source} has no keys starting with {prefix!r}; is it a '
                           'checkpoint of the right model? First keys: '
                           f'{list(state)[:5]}')
    own = module.state_dict()
    missing = sorted(set(own) - set(sub))
    unexpected = sorted(set(sub) - set(own))
    shapes = [f'{k}: {tuple(sub[k].shape)} vs model {tuple(own[k].shape)}'
              for k in own if k in sub and sub[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise RuntimeError(f'{source} does not match {type(module).__name__} '
                           f'(prefix {prefix!r}): ' +
                           describe_mismatch(missing, unexpected, shapes) +
                           '. Check that the preset (e.g. vit_b/vit_l/vit_h) matches '
                           'the checkpoint.')
    module.load_state_dict(sub, strict=True)


def register_checkpoint_safe_globals() -> None:
    """Allow mmengine checkpoints to load with ``torch.load(weights_only=True)``.

    torch >= 2.6 loads with ``weights_only=True`` by default, and mmengine 0.10.7 resume
    checkpoints hold a few non-tensor objects (message-hub ``HistoryBuffer``, numpy arrays
    and scalars, ``getattr``). Rather than switching the safety off globally, allow exactly
    those classes.
    """
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is None:  # torch < 2.4: weights_only is not the default, nothing to do
        return
    import builtins

    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    safe = [HistoryBuffer, builtins.getattr, np.ndarray, np.dtype]
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar  # type: ignore
    safe += [_reconstruct, scalar]
    # numpy >= 1.25 pickles dtypes as instances of per-type classes (Float64DType, ...)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        safe += [getattr(dtypes, n) for n in dir(dtypes)
                 if n.endswith('DType') and isinstance(getattr(dtypes, n), type)]
    add(safe)

