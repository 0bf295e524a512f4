"""Build a model or a dataset from a config outside the Runner, and load a trained detector
checkpoint, refusing one that does not fit.

:func:`build_model` and :func:`build_dataset` serve the cache, bank and analysis tools.
For inference, mmengine's ``load_checkpoint`` only logs missing/unexpected keys, so a
checkpoint trained with another config (other ``num_queries``, ``embed_dims``, levels, SAM
size) would load partly and silently predict with random layers. :func:`build_inference_model`
requires every trainable part in the checkpoint with its shape; only frozen weights (the SAM
parts, which the config loads from its own SAM checkpoint) may be absent.
"""
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.logging import print_log
from mmengine.registry import init_default_scope
from mmengine.runner import CheckpointLoader, load_checkpoint

from ..utils.checkpoint import MissingResourceError, describe_mismatch, format_keys
from ..utils.quiet_logs import quiet_logs


def build_model(cfg: Config, checkpoint: Optional[str] = None, device: str = 'cpu'):
    """``cfg.model`` built, weights from ``checkpoint`` (if given), in eval mode on ``device``.

    SAM weights come from the config's SAM checkpoint when no trained checkpoint is given
    (enough for everything that only runs the frozen SAM).
    """
    from mmdet.registry import MODELS
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise MissingResourceError(f'checkpoint not found: {checkpoint!r}')
    if device.startswith('cuda') and not torch.cuda.is_available():
        raise RuntimeError(f'--device {device} asked for, but CUDA is not available here: '
                           'use --device cpu')
    model = MODELS.build(cfg.model)
    # as the Runner does: mmdet creates some parameters (e.g. DETR's level_embed) as
    # uninitialised memory and fills them only here; frozen SAM weights are left as loaded
    model.init_weights()
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', logger='current')
    return model.to(device).eval()


def build_dataset(cfg: Config, split: str = 'train'):
    """The dataset of ``{split}_dataloader`` (``train``, ``val`` or ``test``)."""
    from mmdet.registry import DATASETS
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    key = f'{split}_dataloader'
    if cfg.get(key) is None:
        raise ValueError(f'the config has no {key}')
    return DATASETS.build(cfg[key]['dataset'])


class CheckpointMismatchError(RuntimeError):
    """A checkpoint whose keys or shapes do not match the model of the config."""


def load_detector_checkpoint(model: torch.nn.Module, path: str) -> None:
    """Load ``path`` into ``model``, raising :class:`CheckpointMismatchError` on a mismatch.

    Missing trainable weights, unexpected keys and shape mismatches are errors; missing
    frozen weights (parameters with ``requires_grad=False`` and buffers) keep the values the
    config gave them, with a warning.
    """
    try:
        ckpt = CheckpointLoader.load_checkpoint(path, map_location='cpu')
    except Exception as e:
        raise CheckpointMismatchError(f'could not read checkpoint {path!r}: {e}') from e
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise CheckpointMismatchError(f'{path!r} holds no state dict')
    state = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}
    own = model.state_dict()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    missing = [k for k in own if k not in state]
    missing_trainable = [k for k in missing if k in trainable]
    unexpected = [k for k in state if k not in own]
    shapes = [f'{k}: {tuple(state[k].shape)} vs model {tuple(own[k].shape)}'
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing_trainable or unexpected or shapes:
        raise CheckpointMismatchError(
            f'checkpoint {path!r} does not fit the model of this config ({type(model).__name__}'
            '): ' + describe_mismatch(missing_trainable, unexpected, shapes, 8) +
            '. Use the config it was trained with (the training work_dir holds a copy), or '
            'the right --cfg-options.')
    if missing:
        print_log(f'{len(missing)} frozen weights are not in {path} and keep the values of '
                  f'the config (e.g. its SAM checkpoint): {format_keys(missing, 8)}',
                  logger='current', level=30)
    model.load_state_dict(state, strict=False)


def check_trained(model: torch.nn.Module, checkpoint: Optional[str],
                  random_weights: bool = False) -> None:
    """Refuse a model with trainable weights and no ``checkpoint`` (unless ``random_weights``).

    Training-free models (the matcher, PerSAM, SAM 3: every weight frozen and loaded from
    the config's own checkpoints) need none; any other model would predict with the random
    values of its initialisation, without an error and with scores near zero.

    Raises:
        MissingResourceError: one line naming the model, the missing checkpoint and the
            two ways out.
    """
    if checkpoint is not None or random_weights:
        return
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    if trainable:
        raise MissingResourceError(
            f'no checkpoint given for {type(model).__name__}, whose {len(trainable)} trained '
            f'weights (e.g. {trainable[0]}) would stay random: give its trained checkpoint '
            '(tools/infer.py CONFIG CHECKPOINT, InContextInferencer(config, checkpoint)), '
            'or, for a smoke test with random weights, --random-weights '
            '(random_weights=True)')


def build_inference_model(cfg: Config, checkpoint: Optional[str] = None,
                          device: Optional[str] = None, verbose: bool = False,
                          random_weights: bool = False):
    """The config's model on ``device`` (default: CUDA when available), eval mode, with the
    checkpoint's weights checked key by key; weight-initialisation logs only if
    ``verbose`` (:func:`mmsamantics.utils.quiet_logs.quiet_logs`).

    A model with trainable weights needs ``checkpoint`` unless ``random_weights``
    (:func:`check_trained`)."""
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise MissingResourceError(f'checkpoint not found: {checkpoint!r}')
    with quiet_logs(verbose):
        model = build_model(cfg, None, device)
        check_trained(model, checkpoint, random_weights)
        if checkpoint is not None:
            load_detector_checkpoint(model, checkpoint)
    return model.eval()
