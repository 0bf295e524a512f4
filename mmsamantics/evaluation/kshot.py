"""k-shot evaluation protocol: reference-set / bank options on a config, and the summary.

The authors evaluate with fixed k-shot reference sets chosen once per seed (42, 123, 33)
and average the seeds. :func:`apply_reference_options` points a test config at one
reference set (and, optionally, a bank of its precomputed tokens); :func:`summarize`
turns the per-run metrics into mean ± std per (mode, shots).
"""
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.config import Config

from ..datasets.reference_controls import normalize_control


def apply_reference_options(cfg: Config, ref_set: Optional[str] = None,
                            shots: Optional[int] = None, ref_bank: Optional[str] = None,
                            mode: Optional[str] = None, split: str = 'test',
                            ref_control: Optional[str] = None) -> None:
    """Set the evaluation references of ``cfg`` in place.

    Args:
        ref_set: reference-set JSON (tools/misc/make_reference_sets.py).
        shots: k (first k references per class).
        ref_bank: bank of the references' tokens (tools/misc/encode_references.py): the
            detector reads tokens from it and the pipeline stops loading reference images.
        mode: ``'oracle'`` or ``'open'``.
        ref_control: a control run that tests whether the model uses its references
            (:mod:`mmsamantics.datasets.reference_controls`: ``'cyclic'``, ``'random-3'``,
            ``'same-attribute'``, ``'blank'``...); ``'none'`` removes a control the config
            carries; None leaves the config as it is.
    """
    ds = cfg[f'{split}_dataloader']['dataset']
    if ref_control is not None:
        ref_control = normalize_control(ref_control)
        if ref_control == 'blank' and ref_bank is not None:
            raise ValueError('--ref-control blank replaces every reference image by a constant '
                             'one, which no reference bank holds: drop --ref-bank')
        ds['ref_control'] = ref_control
    if ref_set is not None:
        ds['ref_set_file'] = osp.abspath(ref_set)
    if shots is not None:
        ds['shots'] = shots
    if mode is not None:
        ds['mode'] = mode
    if ref_bank is not None:
        cfg.model['reference_store'] = dict(cfg.model.get('reference_store') or {},
                                            bank=osp.abspath(ref_bank))
        found = False
        # SAMIC's heatmaps come from the masks, decoded without their images
        heatmaps = any(str(t.get('type')).endswith('GenerateSaliencyHeatmaps')
                       for t in ds.get('pipeline', []))
        for t in ds.get('pipeline', []):
            if t.get('type') == 'LoadInContextReferences':
                t['load_images'] = False
                t['with_mask'] = bool(t.get('with_mask')) and heatmaps
                found = True
        if not found:
            raise ValueError('--ref-bank: the test pipeline has no LoadInContextReferences '
                             'step to switch to bank mode')


def enable_classwise(cfg: Config, split: str = 'test') -> None:
    """Per-class AP and AP50 from every :class:`InContextCocoMetric` of ``cfg``'s
    ``{split}_evaluator`` (what the reference-control table compares)."""
    evs = cfg[f'{split}_evaluator']
    for ev in evs if isinstance(evs, (list, tuple)) else [evs]:
        if str(ev.get('type', '')).endswith('InContextCocoMetric'):
            ev['classwise'] = True


METRIC_KEYS = ('bbox_mAP', 'bbox_mAP_50', 'segm_mAP', 'segm_mAP_50')


def summarize(records: Sequence[dict], metrics: Optional[Sequence[str]] = None
              ) -> Tuple[str, Dict[str, Dict[str, List[float]]]]:
    """Mean ± sample std over seeds of each metric per (mode, shots).

    Args:
        records: dicts with ``mode``, ``shots``, ``seed`` and ``metrics`` (name -> value),
            and optionally ``ref_control`` (a control run: its mode is reported as
            ``"<mode>_<control>"``, e.g. ``open_shuffled``).
        metrics: metric names to report (default: the overall, base and novel box/mask AP
            and AP50 that are present).

    Returns:
        (markdown table, {"mode/k-shot": {metric: [mean, std, n_seeds]}}).
    """
    groups: Dict[Tuple[str, int], List[dict]] = defaultdict(list)
    for r in records:
        mode = r['mode'] + (f"_{r['ref_control']}" if r.get('ref_control') else '')
        groups[(mode, int(r['shots']))].append(r)
    names = list(metrics) if metrics else []
    if not names:
        present = {k for r in records for k in r['metrics']}
        for prefix in ('', 'base_', 'novel_'):
            for key in METRIC_KEYS:
                for k in sorted(present):
                    if k.split('/')[-1] == prefix + key and k not in names:
                        names.append(k)
    table: Dict[str, Dict[str, List[float]]] = {}
    short = [n.split('/')[-1] for n in names]
    lines = ['| mode | shots | seeds | ' + ' | '.join(short) + ' |',
             '|---' * (3 + len(names)) + '|']
    for (mode, k) in sorted(groups, key=lambda g: (g[0], g[1])):
        rs = groups[(mode, k)]
        row = {}
        cells = []
        for n in names:
            vals = np.array([r['metrics'][n] for r in rs if n in r['metrics']], float)
            mean = float(vals.mean()) if len(vals) else float('nan')
            std = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
            row[n.split('/')[-1]] = [mean, std, int(len(vals))]
            cells.append(f'{mean:.3f} ± {std:.3f}')
        seeds = ','.join(str(r['seed']) for r in sorted(rs, key=lambda r: r['seed']))
        table[f'{mode}/{k}-shot'] = row
        lines.append(f'| {mode} | {k} | {seeds} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines), table


def control_deltas(table: Dict[str, Dict[str, List[float]]]) -> Dict[str, Dict[str, float]]:
    """ΔAP of every control run against its normal run (same mode and shots).

    Args:
        table: the second output of :func:`summarize`.

    Returns:
        {"<mode>_<control>/<k>-shot": {metric: control mean - normal mean}} for the controls
        whose normal run is in ``table``.
    """
    out = {}
    for name, row in table.items():
        mode, shots = name.split('/')
        base_mode = mode.split('_')[0]
        normal = table.get(f'{base_mode}/{shots}')
        if base_mode == mode or normal is None:
            continue
        out[name] = {m: row[m][0] - normal[m][0] for m in row if m in normal}
    return out
