"""Check, before anything is built, that a probe config's weights and folders exist."""
import os
import os.path as osp
from typing import List

from mmengine.config import Config

from ..engine.preflight import missing_files_error
from ..models.sam.presets import SAM_CHECKPOINT_URLS
from ..models.sam.sam2_presets import SAM2_CHECKPOINT_URLS
from ..models.sam3.sam3_presets import CKPT_URL as SAM3_CHECKPOINT_URL

_DATA_HINT = ('ImageNet goes under data/imagenet/ in the folder layout: train/<class>/*.JPEG '
              'and val/<class>/*.JPEG (or a flat folder plus ann_file, e.g. meta/val.txt), or '
              'set data_root in the config (--cfg-options). The toy data set: python '
              'tools/misc/make_toy_classification.py data/toy_classification')


def _folder_problem(root: str, prefix, ann_file: str) -> str:
    prefix = prefix.get('img_path', '') if isinstance(prefix, dict) else (prefix or '')
    folder = prefix if osp.isabs(prefix) or not root else osp.join(root, prefix)
    if not osp.isdir(folder):
        return f'image folder {folder!r} not found'
    if ann_file:
        ann = ann_file if osp.isabs(ann_file) or not root else osp.join(root, ann_file)
        return '' if osp.isfile(ann) else f'annotation file {ann!r} not found'
    if not any(osp.isdir(osp.join(folder, d)) for d in os.listdir(folder)):
        return f'image folder {folder!r} has no class sub-folders (ImageNet layout)'
    return ''


def missing_probe_resources(cfg: Config) -> List[str]:
    """One line per missing checkpoint, image folder or feature cache of a probe config."""
    lines = []
    bb = (cfg.get('model') or {}).get('backbone') or {}
    ckpt = bb.get('checkpoint')
    if isinstance(ckpt, str) and not osp.isfile(ckpt):
        from .timm_probe_backbone import TIMM_WEIGHT_HINTS
        urls = {osp.basename(u): u for u in (*SAM_CHECKPOINT_URLS.values(),
                                             *SAM2_CHECKPOINT_URLS.values())}
        urls['sam3.pt'] = SAM3_CHECKPOINT_URL  # gated: no direct file address
        hint = urls.get(osp.basename(ckpt)) or TIMM_WEIGHT_HINTS.get(bb.get('model_name'))
        lines.append(f'checkpoint {ckpt!r} (model.backbone.checkpoint) not found' +
                     (f' (download: {hint})' if hint else ''))
    for name in ('train_dataloader', 'val_dataloader'):
        ds = (cfg.get(name) or {}).get('dataset') or {}
        if ds.get('type') == 'CachedFeatureDataset':
            if not osp.isfile(ds.get('ann_file', '')):
                lines.append(f'feature cache {ds.get("ann_file")!r} ({name}) not found')
            continue
        problem = _folder_problem(ds.get('data_root', ''), ds.get('data_prefix', ''),
                                  ds.get('ann_file', ''))
        if problem and problem not in lines:
            lines.append(f'{problem} ({name})')
    return lines


def check_probe_resources(cfg: Config) -> None:
    """Raise :class:`MissingResourceError` listing every missing file, with hints."""
    lines = missing_probe_resources(cfg)
    if lines:
        raise missing_files_error(
            lines, 'this probe config', 'Put the encoder weights under checkpoints/ or set '
            'the checkpoint variable at the top of the config (or --cfg-options).', _DATA_HINT)
