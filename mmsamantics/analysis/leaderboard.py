"""One table for every in-context method: runs' records -> mean ± std over seeds, a plot.

A *record* is one evaluation run of one method (config + checkpoint) on one reference set
(seed), k shots and one mode (oracle / open), as ``tools/analysis/leaderboard.py`` writes
it: ``dict(method, seed, shots, mode, metrics={name: value}, images, seconds,
peak_mem_mb, params_trainable, params_frozen)``. The table reports box/mask AP, AP50 and
AR@100 for all, base and novel classes (COCO metrics x 100), mean ± sample std over seeds,
with the method's speed (images/s of the test loop, data loading excluded), peak memory and
parameter counts.
"""
import time
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.hooks import Hook

# (column, metric name without its "coco/" prefix)
METRICS = (('box AP', 'bbox_mAP'), ('box AP50', 'bbox_mAP_50'), ('box AR@100', 'bbox_AR@100'),
           ('mask AP', 'segm_mAP'), ('mask AP50', 'segm_mAP_50'),
           ('mask AR@100', 'segm_AR@100'))
SPLITS = ('', 'base_', 'novel_')  # all, base, novel classes


class TestSpeedHook(Hook):
    """Seconds and images of the test iterations (model + metric processing; the data
    loading between iterations is excluded)."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.seconds = 0.0
        self.images = 0
        self._t = 0.0

    def before_test_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._t = time.perf_counter()

    def after_test_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds += time.perf_counter() - self._t
        self.images += len(outputs) if outputs is not None else 0


def parameter_counts(model: torch.nn.Module) -> Tuple[int, int]:
    """(trainable, frozen) parameter counts of a model (a DDP wrapper included)."""
    params = list(model.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return trainable, sum(p.numel() for p in params) - trainable


def _metric(metrics: Dict[str, float], name: str) -> Optional[float]:
    for k, v in metrics.items():
        if k.split('/')[-1] == name:
            return float(v)
    return None


def _mean_std(values: Sequence[float]) -> List[float]:
    vals = np.asarray([v for v in values if v is not None], float)
    if not len(vals):
        return [float('nan'), 0.0, 0]
    return [float(vals.mean()), float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
            int(len(vals))]


def summarize_leaderboard(records: Sequence[dict]) -> Dict[str, dict]:
    """Group the runs by (method, mode, shots) and average over seeds.

    Returns:
        {"method | mode | k-shot": {"method", "mode", "shots", "seeds": [...],
        "<split><column>": [mean, std, n] (AP-like values x 100), "images/s",
        "peak MB": [mean, std, n], "trainable", "frozen"}} in the order methods first
        appear, then mode, then shots.
    """
    groups: Dict[Tuple[str, str, int], List[dict]] = defaultdict(list)
    order: Dict[str, int] = {}
    for r in records:
        order.setdefault(r['method'], len(order))
        groups[(r['method'], r['mode'], int(r['shots']))].append(r)
    out = {}
    for key in sorted(groups, key=lambda g: (order[g[0]], g[1], g[2])):
        rs = sorted(groups[key], key=lambda r: r['seed'])
        row = dict(method=key[0], mode=key[1], shots=key[2], seeds=[r['seed'] for r in rs])
        for split in SPLITS:
            for col, name in METRICS:
                vals = [_metric(r['metrics'], split + name) for r in rs]
                row[f'{split}{col}'] = _mean_std([None if v is None or v < 0 else 100 * v
                                                  for v in vals])
        row['images/s'] = _mean_std([r['images'] / r['seconds'] for r in rs if r['seconds']])
        row['peak MB'] = _mean_std([r.get('peak_mem_mb') for r in rs])
        row['trainable'] = rs[0].get('params_trainable')
        row['frozen'] = rs[0].get('params_frozen')
        out[' | '.join((key[0], key[1], f'{key[2]}-shot'))] = row
    return out


def _cell(v: List[float], fmt: str = '.1f') -> str:
    if v[2] == 0 or v[0] != v[0]:
        return '–'
    return f'{v[0]:{fmt}} ± {v[1]:{fmt}}' if v[2] > 1 else f'{v[0]:{fmt}}'


def _params(n: Optional[int]) -> str:
    return '–' if n is None else f'{n / 1e6:.2f}M'


def leaderboard_markdown(summary: Dict[str, dict]) -> str:
    """Two markdown tables: all classes with cost columns, then base / novel classes."""
    cols = [c for c, _ in METRICS]
    head = ['method', 'mode', 'k', 'seeds'] + cols + ['img/s', 'peak MB', 'trainable',
                                                       'frozen']
    lines = ['| ' + ' | '.join(head) + ' |', '|---' * len(head) + '|']
    for row in summary.values():
        lines.append('| ' + ' | '.join(
            [row['method'], row['mode'], str(row['shots']), str(len(row['seeds']))]
            + [_cell(row[c]) for c in cols]
            + [_cell(row['images/s'], '.2f'), _cell(row['peak MB'], '.0f'),
               _params(row['trainable']), _params(row['frozen'])]) + ' |')
    split_cols = [f'{s}{c}' for s in SPLITS[1:] for c in ('box AP', 'box AR@100', 'mask AP',
                                                            'mask AR@100')]
    lines += ['', '| method | mode | k | ' + ' | '.join(split_cols) + ' |',
              '|---' * (3 + len(split_cols)) + '|']
    for row in summary.values():
        lines.append('| ' + ' | '.join([row['method'], row['mode'], str(row['shots'])]
                                       + [_cell(row[c]) for c in split_cols]) + ' |')
    return '\n'.join(lines)


def plot_leaderboard(summary: Dict[str, dict], path: str) -> None:
    """Grouped bars of box and mask AP (all / base / novel) per method, one panel per
    (mode, k); error bars are the std over seeds."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = sorted({(r['mode'], r['shots']) for r in summary.values()})
    bars = [(s, c) for c in ('box AP', 'mask AP') for s in SPLITS]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for ax, (mode, k) in zip(axes[0], panels):
        rows = [r for r in summary.values() if (r['mode'], r['shots']) == (mode, k)]
        x = np.arange(len(rows))
        width = 0.8 / len(bars)
        for i, (s, c) in enumerate(bars):
            vals = [r[s + c] for r in rows]
            ax.bar(x + i * width, [np.nan_to_num(v[0]) for v in vals], width,
                   yerr=[v[1] for v in vals], label=f'{s or "all_"}{c}'.replace('_', ' '))
        ax.set_xticks(x + 0.4 - width / 2, [r['method'] for r in rows], rotation=20,
                      ha='right', fontsize=8)
        ax.set_title(f'{mode}, {k}-shot')
        ax.set_ylabel('AP (x100)')
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
