"""Markdown table and per-class bar plot of a pseudo-label mIoU evaluation."""
from typing import Dict, Optional

import numpy as np


def _pct(x: Optional[float]) -> str:
    return 'n/a' if x is None else f'{100 * x:.1f}'


def miou_table(summary: Dict) -> str:
    """Markdown table of a pseudo-label evaluation: per-class IoU (%), then the means."""
    lines = ['| label | class | IoU (%) | GT pixels | predicted pixels |',
             '|---:|---|---:|---:|---:|']
    for r in summary['per_class']:
        lines.append(f'| {r["label"]} | {r["name"]} | {_pct(r["iou"])} | '
                     f'{r["gt_pixels"]} | {r["pred_pixels"]} |')
    lines.append(f'| | **mIoU (background included)** | **{_pct(summary["miou"])}** | | |')
    lines.append(f'| | mIoU (foreground classes) | {_pct(summary["miou_fg"])} | | |')
    lines.append(f'| | pixel accuracy | {_pct(summary["pixel_acc"])} | | |')
    if summary.get('unlabelled_pixels'):
        lines.append(f'| | GT pixels left unlabelled (255) by the pseudo-labels | | '
                     f'{summary["unlabelled_pixels"]} | |')
    return '\n'.join(lines) + '\n'


def plot_miou(summary: Dict, png: str, title: str = '') -> None:
    """Bars of the per-class IoU of a pseudo-label evaluation, mIoU as a dashed line."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = [r for r in summary['per_class'] if r['iou'] is not None]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.4 * len(rows) + 2), 4))
    ax.bar(np.arange(len(rows)), [r['iou'] for r in rows], 0.7, color='tab:green')
    ax.axhline(summary['miou'], color='k', ls='--', lw=1,
               label=f'mIoU {100 * summary["miou"]:.1f}')
    ax.set_xticks(np.arange(len(rows)))
    ax.set_xticklabels([r['name'] for r in rows], rotation=60, ha='right', fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel('IoU')
    ax.set_title(title or 'pseudo-labels vs GT: per-class IoU')
    ax.legend(fontsize=8, loc='upper right')
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
