"""Loss and accuracy curves of several probe runs in one figure (paper supp. Fig. 6).

Reads mmengine's ``vis_data/scalars.json`` (one JSON object per line: training lines carry
``loss``, ``epoch`` and the global ``iter``/``step``; validation lines carry
``accuracy/top1``, ``accuracy/top5`` and ``step`` = epoch).
"""
import glob
import json
import os.path as osp
from typing import Dict, List

import numpy as np


def run_label(name: str) -> str:
    """Short label of a probe run: ``linear-probe_sam-vit-h_1xb128-10e_in1k`` -> ``sam-vit-h``."""
    parts = name.split('_')
    return parts[1] if len(parts) >= 3 and parts[0] == 'linear-probe' else name


def find_scalars(path: str) -> str:
    """The ``scalars.json`` of ``path``: the file itself, or the newest one under a run's
    work dir (``<work_dir>/<timestamp>/vis_data/scalars.json``)."""
    if osp.isfile(path):
        return path
    if not osp.isdir(path):
        raise FileNotFoundError(f'{path!r} is neither a scalars.json nor a run directory')
    found = sorted(glob.glob(osp.join(path, '**', 'vis_data', 'scalars.json'),
                             recursive=True), key=osp.getmtime)
    if not found:
        raise FileNotFoundError(f'no */vis_data/scalars.json under {path!r}: is it the '
                                'work dir of a finished probe run?')
    return found[-1]


def read_scalars(path: str) -> Dict[str, Dict[str, np.ndarray]]:
    """``{'train': {'iter', 'epoch', 'loss'}, 'val': {'epoch', 'top1', 'top5'}}`` arrays.

    ``train['epoch']`` is fractional (iteration / iterations per epoch) so runs with
    different dataset sizes share the x axis.
    """
    train: List[dict] = []
    val: List[dict] = []
    with open(find_scalars(path)) as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            if 'loss' in rec:
                train.append(rec)
            elif 'accuracy/top1' in rec:
                val.append(rec)
    if not train and not val:
        raise ValueError(f'{path!r} holds no training loss nor validation accuracy')
    it = np.array([r.get('iter', r.get('step', 0)) for r in train], float)
    ep = np.array([r.get('epoch', 0) for r in train], float)
    # iterations per epoch from the last iteration of each completed epoch
    per_epoch = (it.max() / ep.max()) if len(it) and ep.max() > 0 else 1.0
    return dict(train=dict(iter=it, epoch=it / max(per_epoch, 1e-9),
                           loss=np.array([r['loss'] for r in train], float)),
                val=dict(epoch=np.array([r['step'] for r in val], float),
                         top1=np.array([r['accuracy/top1'] for r in val], float),
                         top5=np.array([r.get('accuracy/top5', np.nan) for r in val],
                                       float)))


def plot_curves(runs: Dict[str, str], out_png: str, title: str = 'Linear probing') -> str:
    """One PNG: training loss (left), validation top-1 (middle) and top-5 (right) vs
    epoch, one line per run.

    Args:
        runs: ``{label: scalars.json or run work dir}``.
        out_png: output file.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    if not runs:
        raise ValueError('no runs to plot')
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for label, path in runs.items():
        s = read_scalars(path)
        axes[0].plot(s['train']['epoch'], s['train']['loss'], label=label)
        axes[1].plot(s['val']['epoch'], s['val']['top1'], marker='o', label=label)
        axes[2].plot(s['val']['epoch'], s['val']['top5'], marker='o', label=label)
    for ax, ylabel in zip(axes, ('training loss', 'val top-1 accuracy (%)',
                                 'val top-5 accuracy (%)')):
        ax.set_xlabel('epoch')
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
