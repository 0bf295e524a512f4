"""Make a reference bank from a config's evaluation dataset and a reference-set file."""
import json
import os.path as osp
from typing import Optional

from mmengine.config import Config

from ..structures.reference_bank import save_reference_bank
from .model_loading import build_dataset


def make_reference_bank(model, cfg: Config, ref_set_file: str, shots: int, out: str,
                        split: str = 'test', batch_size: int = 4,
                        extra_meta: Optional[dict] = None) -> dict:
    """Encode the first ``shots`` references per class of ``ref_set_file`` into ``out``.

    Works for every detector with ``encode_references`` and ``cache_signature``: InSAM-DETR
    stores SAM mask tokens (R, T, D), :class:`SAMDINOv2Matcher` its DINOv2 reference
    features (R, 1, C).

    The references are the ones the ``split`` dataset builds from the file (same keys, same
    classes), so a test run with ``ref_set_file`` + ``shots`` <= this ``shots`` finds every
    reference in the bank. Returns the bank's meta.
    """
    cfg = cfg.copy()
    ds_cfg = cfg[f'{split}_dataloader']['dataset']
    ds_cfg['ref_set_file'] = osp.abspath(ref_set_file)
    ds_cfg['shots'] = shots
    if ds_cfg.get('mode', 'train') == 'train':
        ds_cfg['mode'] = 'oracle'
    dataset = build_dataset(cfg, split)
    classes = list(dataset.metainfo['classes'])
    refs = [r for lb in sorted(dataset.reference_set) for r in dataset.reference_set[lb]]
    keys, tokens = model.encode_references(refs, batch_size=batch_size)
    with open(ref_set_file) as f:
        info = json.load(f).get('info', {})
    meta = dict(ref_set_file=osp.abspath(ref_set_file), shots=shots, seed=info.get('seed'),
                classes=classes, **(extra_meta or {}))
    save_reference_bank(out, keys, [classes[r['label']] for r in refs], tokens,
                        model.cache_signature, meta)
    return meta
