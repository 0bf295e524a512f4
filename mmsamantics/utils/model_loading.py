"""Build a model (and a dataset) from a config outside the Runner, for analysis/cache tools."""
import os.path as osp
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

from .checkpoint import MissingResourceError


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
