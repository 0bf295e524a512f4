"""Check, before anything is built, that the files a config points to exist.

A real config run on a machine without SAM weights or COCO should stop with ONE message
listing every missing file and where to get it, not with a traceback from deep inside a
model or dataset constructor.
"""
import os.path as osp
import re
from typing import Iterator, List, Tuple

from mmengine.config import Config, ConfigDict

from ..models.sam.presets import SAM_CHECKPOINT_URLS
from ..utils.checkpoint import MissingResourceError, where_looked

_COCO_HINT = ('COCO 2017 goes under data/coco/ (annotations/, train2017/, val2017/; see the '
              'README "Data and weights" section), or set data_root.')


def _walk_checkpoints(node, path: str = 'model') -> Iterator[Tuple[str, str]]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == 'checkpoint' and isinstance(v, str):
                yield f'{path}.{k}', v
            else:
                yield from _walk_checkpoints(v, f'{path}.{k}')
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _walk_checkpoints(v, f'{path}[{i}]')


def _join(root, path):
    if not path or '://' in str(path) or osp.isabs(path) or not root:
        return path
    return osp.join(root, path)


def _dataset_files(ds: dict) -> Iterator[Tuple[str, str, bool]]:
    """(what, path, is_dir) of a dataset config, unwrapping dataset wrappers."""
    if not isinstance(ds, dict):
        return
    if 'dataset' in ds:
        yield from _dataset_files(ds['dataset'])
    for d in ds.get('datasets', []) or []:
        yield from _dataset_files(d)
    root = ds.get('data_root')
    if ds.get('ann_file'):
        yield 'annotation file', _join(root, ds['ann_file']), False
    if ds.get('ref_ann_file'):
        yield 'reference annotation file', _join(root, ds['ref_ann_file']), False
    prefix = (ds.get('data_prefix') or {}).get('img')
    if prefix:
        yield 'image folder', _join(root, prefix), True
    if ds.get('ref_img_prefix'):
        yield 'reference image folder', _join(root, ds['ref_img_prefix']), True
    if ds.get('ref_set_file'):
        path = _join(root, ds['ref_set_file'])
        src = _join(root, ds.get('ref_ann_file') or ds.get('ann_file') or 'TRAIN_ANN_FILE')
        yield (f'reference set (create: python tools/misc/make_reference_sets.py {src} '
               f'--out-dir {osp.dirname(path) or "."})', path, False)
    for t in ds.get('pipeline', []) or []:
        if isinstance(t, dict) and t.get('cache_dir'):
            yield ('SAM feature cache (create: tools/misc/cache_embeddings.py)',
                   osp.join(t['cache_dir'], 'meta.json'), False)


def missing_resources(cfg: Config, phase: str = 'train') -> List[str]:
    """Lines describing each missing checkpoint or dataset file for ``phase``."""
    lines = []
    seen = set()
    for where, path in _walk_checkpoints(cfg.get('model', {})):
        if path in seen or '://' in path or osp.isfile(path):
            continue
        seen.add(path)
        url = next((u for u in SAM_CHECKPOINT_URLS.values()
                    if osp.basename(u) == osp.basename(path)), None)
        hint = f' (download: {url})' if url else ''
        toy = {'sam_tiny_toy.pth': 'tools/misc/pretrain_toy_sam.py',
               'sam_hq_tiny_toy.pth': 'tools/misc/pretrain_toy_hq_sam.py',
               'dinov2_tiny_toy.pth': 'tools/misc/pretrain_toy_dinov2.py',
               'sam3_toy.pth': 'tools/misc/pretrain_toy_sam3.py'}
        if osp.basename(path) in toy:
            hint = f' (create it: python {toy[osp.basename(path)]})'
        lines.append(f'checkpoint {path!r} ({where}) not found{hint}')
    model = cfg.get('model') or {}
    bank = (model.get('reference_store') or {}).get('bank') or model.get('reference_bank')
    if bank and not osp.isfile(bank):
        seen.add(bank)
        lines.append(f'reference bank {bank!r} (model.reference_store.bank) not found '
                     '(create: tools/misc/encode_references.py)')
    loaders = ['train_dataloader', 'val_dataloader'] if phase == 'train' else ['test_dataloader']
    if phase == 'train' and cfg.get('val_cfg') is None:
        loaders = ['train_dataloader']
    for name in loaders:
        loader = cfg.get(name)
        if not isinstance(loader, (dict, ConfigDict)):
            continue
        for what, path, is_dir in _dataset_files(loader.get('dataset', {})):
            ok = osp.isdir(path) if is_dir else osp.isfile(path)
            if path not in seen and '://' not in path and not ok:
                seen.add(path)
                lines.append(f'{what} {path!r} ({name}) not found')
    evaluators = ['test_evaluator'] if phase == 'test' else \
        (['val_evaluator'] if cfg.get('val_cfg') is not None else [])
    for name in evaluators:
        ev = cfg.get(name)
        for e in (ev if isinstance(ev, (list, tuple)) else [ev]):
            if not isinstance(e, (dict, ConfigDict)):
                continue
            for key in ('ann_file', 'class_splits_file'):
                path = e.get(key)
                if path and path not in seen and '://' not in path and not osp.isfile(path):
                    seen.add(path)
                    lines.append(f'{key} {path!r} ({name}) not found')
    return lines


def missing_files_error(lines: List[str], what: str, checkpoint_hint: str,
                        data_hint: str) -> MissingResourceError:
    """One error listing every missing file, with the hints that apply to them."""
    hints = []
    if any(line.startswith('checkpoint') for line in lines):
        hints.append(checkpoint_hint)
    if any(not line.startswith('checkpoint') for line in lines):
        hints.append(data_hint)
    paths = [m.group(1) for m in (re.search(r" '([^']+)' ", f' {ln} ') for ln in lines) if m]
    where = next((where_looked(p) for p in paths if where_looked(p)), '')
    if where:  # relative paths: where they were looked up (and whether the project has them)
        hints.append(f'Relative paths were {where}.')
    return MissingResourceError(f'missing files for {what}:\n  - ' + '\n  - '.join(lines)
                                + '\n' + ' '.join(hints))


def check_resources(cfg: Config, phase: str = 'train') -> None:
    """Raise :class:`MissingResourceError` listing every missing file, with hints."""
    lines = missing_resources(cfg, phase)
    if lines:
        raise missing_files_error(
            lines, 'this config', 'Put the SAM weights under checkpoints/ or set '
            'sam_checkpoint in the config (or --cfg-options).', _COCO_HINT)
