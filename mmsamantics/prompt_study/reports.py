"""Markdown tables and the per-class bar plot of the box-prompt study and pseudo-label mIoU."""
from typing import Dict, Optional

import numpy as np


def _f(x: Optional[float], pct: bool = False) -> str:
    if x is None:
        return 'n/a'
    return f'{100 * x:.1f}' if pct else f'{x:.3f}'


def study_table(summary: Dict, loosen: float, loosen_mode: str) -> str:
    """Markdown table: one row per class (IoU tight / loose / difference), then the means."""
    lines = [f'| class | instances | IoU tight | IoU loose (+{loosen:g}, {loosen_mode}) | '
             'loose - tight |', '|---|---:|---:|---:|---:|']
    for r in summary['per_class']:
        lines.append(f'| {r["name"]} | {r["instances"]} | {_f(r["iou_tight"])} | '
                     f'{_f(r["iou_loose"])} | {r["iou_loose"] - r["iou_tight"]:+.3f} |')
    for what, key in (('**mIoU (mean over classes)**', 'miou'),
                      ('mean over instances', 'instance_iou')):
        t, lo = summary[f'{key}_tight'], summary[f'{key}_loose']
        lines.append(f'| {what} | {summary["num_instances"]} | **{_f(t)}** | **{_f(lo)}** | '
                     f'{lo - t:+.3f} |')
    return '\n'.join(lines) + '\n'


def plot_study(summary: Dict, png: str, title: str = '') -> None:
    """Grouped bars per class, tight vs loose IoU, with the two mIoU as dashed lines."""
    import matplotlib
    matplotlib.use('Agg')  # no display on the build machines
    import matplotlib.pyplot as plt
    rows = summary['per_class']
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(rows) + 2), 4))
    for off, g, colour in ((-0.2, 'tight', 'tab:blue'), (0.2, 'loose', 'tab:orange')):
        ax.bar(x + off, [r[f'iou_{g}'] for r in rows], 0.4, color=colour,
               label=f'SAM {g} box (mIoU {summary[f"miou_{g}"]:.3f})')
        ax.axhline(summary[f'miou_{g}'], color=colour, ls='--', lw=1)
    ax.set_xticks(x)
    ax.set_xticklabels([r['name'] for r in rows], rotation=60, ha='right', fontsize=8)
    ax.set_ylim(0, 1.15)  # headroom for the legend above the bars
    ax.set_ylabel('mean mask IoU')
    ax.set_title(title or 'SAM box prompts: tight vs loose')
    ax.legend(fontsize=8, loc='upper center', ncol=2)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)


def miou_table(summary: Dict) -> str:
    """Markdown table of a pseudo-label evaluation: per-class IoU (%), then the means."""
    lines = ['| label | class | IoU (%) | GT pixels | predicted pixels |',
             '|---:|---|---:|---:|---:|']
    for r in summary['per_class']:
        lines.append(f'| {r["label"]} | {r["name"]} | {_f(r["iou"], True)} | '
                     f'{r["gt_pixels"]} | {r["pred_pixels"]} |')
    lines.append(f'| | **mIoU (background included)** | **{_f(summary["miou"], True)}** | | |')
    lines.append(f'| | mIoU (foreground classes) | {_f(summary["miou_fg"], True)} | | |')
    lines.append(f'| | pixel accuracy | {_f(summary["pixel_acc"], True)} | | |')
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
