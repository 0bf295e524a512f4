"""Markdown table and per-class bar plot of the box-prompt study (tight vs loose IoU)."""
from typing import Dict, Optional

import numpy as np


def _f(x: Optional[float]) -> str:
    return 'n/a' if x is None else f'{x:.3f}'


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
    matplotlib.use('Agg')  # write files; never open a window (headless runs)
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
