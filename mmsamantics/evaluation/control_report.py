"""The reference-control table: each control of the family against the right references,
per split and per class.

A model uses its references when the right references beat every derangement; one number
per split can hide a class that the control leaves untouched, so the table also reports,
per control, the mean over classes of the per-class drop (right AP50 - control AP50) and how
many classes the right references win. A control passes when that mean is positive (the
right references beat it per class on average) in every split.

Runs are metric dicts (``coco/bbox_mAP_50``, ``coco/base_bbox_mAP_50``, per class
``coco/bbox_mAP_50/<class>`` from ``InContextCocoMetric(classwise=True)``). The controls of
one group (``random-0``, ``random-1``... -> ``random``) are averaged, with their spread.
"""
from collections import OrderedDict, defaultdict
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..datasets.reference_controls import control_group, normalize_control

PREFIX = 'coco/'
EPS = 1e-6  # AP values carry 3 decimals: a smaller difference is a tie


def _get(metrics: Mapping, key: str) -> Optional[float]:
    for k in (PREFIX + key, key):
        if k in metrics:
            return float(metrics[k])
    return None


def per_class(metrics: Mapping, metric: str = 'bbox_mAP_50') -> Dict[str, float]:
    """{class: value} of a run's per-class keys ``coco/<metric>/<class>``."""
    out = {}
    for k, v in metrics.items():
        head, _, name = k[len(PREFIX):].partition('/') if k.startswith(PREFIX) else ('', '', '')
        if head == metric and name:
            out[name] = float(v)
    return out


def split_derived(metrics: Mapping) -> Tuple[Dict[str, float], Dict[str, Dict[str, float]]]:
    """(right-reference metrics, {control: its metrics}) of a run whose metric derived the
    controls (``coco/<control>/<key>``, ``InContextCocoMetric(derived_controls=...)``); each
    control's keys lose the control part, so they read like a run of its own."""
    right: Dict[str, float] = {}
    controls: Dict[str, Dict[str, float]] = OrderedDict()
    for k, v in metrics.items():
        head, _, rest = k[len(PREFIX):].partition('/') if k.startswith(PREFIX) else ('', '', '')
        try:
            control = normalize_control(head) if rest else None
        except ValueError:
            control = None
        if control is None:
            right[k] = v
        else:
            controls.setdefault(control, {})[PREFIX + rest] = v
    return right, controls


def _mean_std(values: Sequence[float]) -> List[float]:
    v = np.asarray([x for x in values if x is not None], float)
    if not len(v):
        return [float('nan'), 0.0, 0]
    return [float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, int(len(v))]


def control_summary(right: Mapping, controls: Mapping[str, Mapping],
                    splits: Optional[Mapping[str, Sequence[str]]] = None,
                    metric: str = 'bbox_mAP_50') -> Dict[str, dict]:
    """Each control group against the right references.

    Args:
        right: metrics of the run with the right references.
        controls: control name -> metrics of its run (same model, targets, mode, shots).
        splits: ``{split: [class names]}`` (``coco/<split>_<metric>`` keys), reported
            beside all classes (None: all classes only).
        metric: the metric compared (box AP50 by default).

    Returns:
        ``{group: {"runs": [names], "<split>": [mean, std, n], "<split>_drop": fraction
        of the right value lost, "<split>_class_delta": mean over the split's classes of
        right - control, "<split>_class_wins": [won, classes], "pass": bool, or None
        without per-class values}}``, with
        ``"right"`` first, holding the right references' split values.
    """
    names = ['all'] + list(splits or {})
    rc = per_class(right, metric)
    out: Dict[str, dict] = OrderedDict(right={
        s: _mean_std([_get(right, metric if s == 'all' else f'{s}_{metric}')]) for s in names})
    groups: Dict[str, List[str]] = OrderedDict()
    for name in controls:
        groups.setdefault(control_group(name), []).append(name)
    for group, runs in groups.items():
        row: dict = dict(runs=list(runs))
        judged = []  # per split with per-class values: do the right references win?
        for s in names:
            key = metric if s == 'all' else f'{s}_{metric}'
            row[s] = _mean_std([_get(controls[r], key) for r in runs])
            base = out['right'][s][0]
            row[f'{s}_drop'] = (1 - row[s][0] / base) if base else float('nan')
            classes = sorted(rc) if s == 'all' else [c for c in splits[s] if c in rc]
            deltas = [float(np.mean([rc[c] - per_class(controls[r], metric).get(c, 0.0)
                                     for r in runs])) for c in classes]
            row[f'{s}_class_delta'] = float(np.mean(deltas)) if deltas else float('nan')
            row[f'{s}_class_wins'] = [int(sum(d > EPS for d in deltas)), len(classes)]
            if deltas:
                judged.append(row[f'{s}_class_delta'] > EPS)
        # None: no per-class values (the metric ran without classwise=True)
        row['pass'] = all(judged) if judged else None
        out[group] = row
    return out


def control_markdown(summary: Mapping[str, dict], metric: str = 'bbox_mAP_50') -> str:
    """The table of :func:`control_summary`: one row per control group."""
    splits = [s for s in summary['right'] if s != 'all'] or ['all']
    head = ['references'] + [f'{s} {metric}' for s in splits] + [
        f'{s}: drop / per-class Δ / classes won' for s in splits] + ['passes']
    lines = ['| ' + ' | '.join(head) + ' |', '|---' * len(head) + '|']
    right = summary['right']
    lines.append('| right | ' + ' | '.join(f'{right[s][0]:.3f}' for s in splits)
                 + ' | ' + ' | '.join('' for _ in splits) + ' | |')
    for group, row in summary.items():
        if group == 'right':
            continue
        label = group + (f' ({len(row["runs"])} seeds)' if len(row['runs']) > 1 else '')
        vals = [f'{row[s][0]:.3f}' + (f' ± {row[s][1]:.3f}' if row[s][2] > 1 else '')
                for s in splits]
        drops = [f'{100 * row[f"{s}_drop"]:.0f} % / {row[f"{s}_class_delta"]:+.3f} / '
                 f'{row[f"{s}_class_wins"][0]}/{row[f"{s}_class_wins"][1]}' for s in splits]
        lines.append(f'| {label} | ' + ' | '.join(vals + drops)
                     + f' | {"yes" if row["pass"] else "**no**"} |')
    return '\n'.join(lines)


def mean_metrics(runs: Sequence[Mapping]) -> Dict[str, float]:
    """Key-wise mean of the numeric metrics of several runs (e.g. reference-set seeds); a
    key missing from a run is averaged over the runs that have it."""
    vals: Dict[str, List[float]] = defaultdict(list)
    for m in runs:
        for k, v in m.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                vals[k].append(float(v))
    return {k: float(np.mean(v)) for k, v in vals.items()}


def derived_control_summaries(runs: Mapping[str, Mapping],
                               splits: Optional[Mapping[str, Sequence[str]]] = None
                               ) -> Dict[str, dict]:
    """{run: :func:`control_summary`} for every run (metrics, by name) that carries derived
    controls (``InContextCocoMetric(derived_controls=...)``); runs without any are left out."""
    out = {}
    for name, metrics in runs.items():
        right, controls = split_derived(metrics)
        if controls:
            out[name] = control_summary(right, controls, splits)
    return out


def control_tables(records: Sequence[dict],
                   splits: Optional[Mapping[str, Sequence[str]]] = None,
                   metric: str = 'bbox_mAP_50') -> Tuple[str, Dict[str, dict]]:
    """:func:`control_summary` for every (mode, shots) of a sweep that has control runs.

    Args:
        records: runs as ``tools/analysis/kshot_eval.py`` and the leaderboard write them:
            ``mode``, ``shots``, ``ref_control`` (None for the right references) and
            ``metrics``; runs of several reference-set seeds are averaged first.

    Returns:
        (markdown with one table per (mode, shots), {"<mode>/<k>-shot": summary}).
    """
    groups: Dict[Tuple[str, int], Dict[str, List[Mapping]]] = defaultdict(
        lambda: defaultdict(list))
    for r in records:
        control = normalize_control(r.get('ref_control')) or 'right'
        groups[(r['mode'], int(r['shots']))][control].append(r['metrics'])
    parts, data = [], {}
    for (mode, k), runs in sorted(groups.items()):
        controls = {c: mean_metrics(ms) for c, ms in runs.items() if c != 'right'}
        if 'right' not in runs or not controls:
            continue
        summary = control_summary(mean_metrics(runs['right']), controls, splits, metric)
        data[f'{mode}/{k}-shot'] = summary
        parts.append(f'{mode}, {k}-shot ({len(runs["right"])} reference set(s)):\n'
                     + control_markdown(summary, metric))
    return '\n\n'.join(parts), data
