"""Strict local loading of SAM 3 weights into a ``Sam3Image``."""
import os.path as osp
from typing import Dict

import torch
import torch.nn as nn
from torch import Tensor

from .sam3_presets import CKPT_URL


def sam3_detector_state(ckpt: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """The image detector's weights of a SAM 3 checkpoint.

    The released ``sam3.pt`` holds the image detector under ``detector.`` and the video
    tracker under ``tracker.`` (``sam3.model_builder._load_checkpoint``); a state dict saved
    from a ``Sam3Image`` itself has no prefix.
    """
    if isinstance(ckpt.get('model'), dict):
        ckpt = ckpt['model']
    if any(k.startswith('detector.') for k in ckpt):
        return {k[len('detector.'):]: v for k, v in ckpt.items() if k.startswith('detector.')}
    return dict(ckpt)


def sam3_tracker_state(ckpt: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """The tracker's weights of a SAM 3 checkpoint (``tracker.`` prefix dropped): its SAM
    1-task prompt encoder and mask decoder (``sam_prompt_encoder.*``, ``sam_mask_decoder.*``,
    ``no_mem_embed``), which ``sam3.model_builder._load_checkpoint`` gives the image model's
    interactive predictor. A checkpoint without ``tracker.`` keys is returned as it is."""
    if isinstance(ckpt.get('model'), dict):
        ckpt = ckpt['model']
    if any(k.startswith('tracker.') for k in ckpt):
        return {k[len('tracker.'):]: v for k, v in ckpt.items() if k.startswith('tracker.')}
    return dict(ckpt)


def load_sam3_checkpoint(model: nn.Module, path: str) -> None:
    """Load ``path`` into ``model`` strictly (every key, no extra), or say what differs.

    Raises:
        FileNotFoundError: no file at ``path`` (with where to get the weights).
        RuntimeError: the keys do not match this preset (missing / unexpected named).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'SAM 3 checkpoint not found at {path!r}: download sam3.pt '
                                f'from {CKPT_URL} and set sam3_checkpoint in the config')
    state = sam3_detector_state(torch.load(path, map_location='cpu', weights_only=True))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(
            f'{path} does not fit this SAM 3 preset: {len(missing)} missing keys '
            f'{missing[:5]}, {len(unexpected)} unexpected keys {unexpected[:5]} (use the '
            'preset the checkpoint was made for: "full" for the released sam3.pt)')
