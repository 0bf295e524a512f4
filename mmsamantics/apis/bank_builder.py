"""Make a reference bank from a config's evaluation dataset and its references (a
reference-set file, or the dataset's own seeded draw)."""
import copy
import json
import os.path as osp
from typing import Optional

from mmengine.config import Config

from .model_loading import build_dataset


def make_reference_bank(model, cfg: Config, ref_set_file: Optional[str], shots: int, out: str,
                        split: str = 'test', batch_size: int = 4,
                        extra_meta: Optional[dict] = None) -> dict:
    """Encode the first ``shots`` references per class of ``ref_set_file`` into ``out``
    (``ref_set_file=None``: of the dataset's own draw, its ``ref_seed`` from its
    ``ref_ann_file``; the first k of a k-shot draw are the draw of fewer shots).

    Works for every in-context detector (``encode_references``, ``save_bank``): InSAM-DETR
    stores SAM tokens (R, T, D), :class:`SAMDINOv2Matcher` its DINOv2 reference features
    (R, 1, C); the bank is the one format the inference API also reads and writes.

    The references are the ones the ``split`` dataset builds from the file (same keys, same
    classes), so a test run with ``ref_set_file`` + ``shots`` <= this ``shots`` finds every
    reference in the bank. Returns the bank's meta.
    """
    cfg = copy.deepcopy(cfg)  # Config.copy() shares the nested dicts edited below
    ds_cfg = cfg[f'{split}_dataloader']['dataset']
    if ref_set_file is not None:
        ds_cfg['ref_set_file'] = osp.abspath(ref_set_file)
    ds_cfg['shots'] = shots
    ds_cfg['ref_control'] = None  # the bank holds references, whatever control reads them
    if ds_cfg.get('mode', 'train') == 'train':
        ds_cfg['mode'] = 'oracle'
    dataset = build_dataset(cfg, split)
    classes = list(dataset.metainfo['classes'])
    refs = [r for lb in sorted(dataset.reference_set) for r in dataset.reference_set[lb]]
    keys, tokens = model.encode_references(refs, batch_size=batch_size)
    if ref_set_file is not None:
        with open(ref_set_file) as f:
            info = json.load(f).get('info', {})
        source = dict(ref_set_file=osp.abspath(ref_set_file), seed=info.get('seed'))
    else:
        source = dict(ref_set_file=None, seed=dataset.ref_seed,
                      ref_ann_file=dataset._ref_ann_file)
    meta = dict(source, shots=shots, classes=classes, **(extra_meta or {}))
    model.save_bank(out, keys, [classes[r['label']] for r in refs], tokens, meta)
    return meta
