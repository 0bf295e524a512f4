"""Time and peak memory of the COCO evaluation at COCO size: mmdet's ``CocoMetric`` and
``InContextCocoMetric`` (all, base and novel classes) with each COCOeval backend.

    python tools/analysis/benchmark_eval.py --images 1000
    python tools/analysis/benchmark_eval.py --images 5000 --variants mmdet faster
    python tools/analysis/benchmark_eval.py --ann data/coco/annotations/instances_val2017.json

The ground truth is a COCO-shaped synthetic file (``tools/misc/make_synthetic_coco.py``) or
``--ann``; the detections are what an in-context detector returns in oracle mode: up to
``--per-pair`` (the authors' 100) per (image, class present), with box-shaped RLE masks,
made from the ground truth (no pixels, no model). Each variant runs in its own process on
the same detections, so its peak memory is its own; the time is that of
``compute_metrics`` (results to COCO JSON, ``loadRes``, per-image evaluation, accumulation,
summaries), wall-clock and CPU (CPU time is less sensitive to other load on the machine;
faster-coco-eval computes mask IoUs on several threads, so its CPU time can exceed its wall
time); the memory is the process's peak RSS (the detections included). ``sent`` is the
pickled size of the detections as the metric keeps them (what the ranks send when the
results are collected), ``held`` the memory they take once unpickled (what the collecting
rank holds, and with ``collect_device='gpu'`` every rank). The variants' numbers are
compared key by key and any difference is printed.

Variants: ``mmdet`` (mmdet's ``CocoMetric``, all classes only), ``pycocotools`` /
``faster`` (``InContextCocoMetric`` with COCO-NOVEL's base/novel splits and that backend),
``per-split`` (all, base and novel each evaluated from its own ``loadRes``: what one
evaluation per split costs).
"""
import argparse
import json
import os.path as osp
import pickle
import sys
import tempfile
import time
from typing import List, Optional

from mmsamantics.utils.profiling import print_result, run_measured

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
VARIANTS = ('mmdet', 'pycocotools', 'faster', 'per-split')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--images', type=int, default=1000, help='synthetic images (without --ann)')
    p.add_argument('--ann', default=None, help='a COCO annotation file instead of synthetic')
    p.add_argument('--per-pair', type=int, default=100, help='detections per (image, class)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--variants', nargs='+', default=['mmdet', 'pycocotools', 'faster'],
                   choices=VARIANTS)
    p.add_argument('--metrics', nargs='+', default=['bbox', 'segm'], choices=['bbox', 'segm'])
    p.add_argument('--out', default=None, help='JSON file for the results')
    p.add_argument('--child', default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def build_metric(variant: str, ann: str, metrics: List[str]):
    """The metric of ``variant`` on ``ann``, with COCO's classes (and base/novel splits)."""
    from mmdet.evaluation import CocoMetric
    from mmsamantics.datasets.class_splits import coco_classes, split_classes
    from mmsamantics.evaluation import InContextCocoMetric
    if variant == 'mmdet':
        metric = CocoMetric(ann_file=ann, metric=metrics)
    else:
        splits = {s: split_classes(f'coco-{s}') for s in ('base', 'novel')}
        backend = 'pycocotools' if variant == 'per-split' else variant
        metric = InContextCocoMetric(ann_file=ann, metric=metrics, class_splits=splits,
                                     backend=backend)
    metric.dataset_meta = dict(classes=coco_classes())
    return metric


def run_child(args: argparse.Namespace) -> dict:
    """One variant: detections made, metric computed, time and peak RSS measured."""
    import contextlib
    import io
    sys.path.insert(0, osp.join(REPO, 'tools', 'misc'))
    from make_synthetic_coco import detections
    from mmsamantics.utils.profiling import PeakMemory, current_rss_bytes
    with open(args.ann) as f:
        doc = json.load(f)
    sizes = {im['id']: (im['height'], im['width']) for im in doc['images']}
    dets = detections(doc, args.per_pair, args.seed)
    del doc
    if args.child != 'mmdet':  # what InContextCocoMetric.process keeps: masks packed
        from mmsamantics.evaluation.in_context_coco_metric import packed_masks
        dets = [dict(d, **packed_masks(d.pop('masks'))) for d in dets]
    results = [(dict(img_id=d['img_id'], height=sizes[d['img_id']][0],
                     width=sizes[d['img_id']][1]), d) for d in dets]
    del dets
    sent, held = collected_size(results)
    metric = build_metric(args.child, args.ann, args.metrics)
    before = current_rss_bytes()
    t, cpu = time.perf_counter(), time.process_time()
    with PeakMemory() as mem, contextlib.redirect_stdout(io.StringIO()):
        if args.child == 'per-split':
            out = metric._per_subset(results)
        else:
            out = metric.compute_metrics(results)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    return dict(variant=args.child, seconds=seconds, cpu_seconds=cpu, rss_before=before,
                rss_peak=mem.rss_peak, results_bytes=sent, results_rss=held,
                detections=sum(len(r['scores']) for _, r in results), metrics=dict(out))


def collected_size(results: list) -> tuple:
    """(bytes of the pickled results: what a rank sends; bytes of RSS that unpickling them
    adds: what the collecting rank holds for them)."""
    from mmsamantics.utils.profiling import current_rss_bytes
    blob = pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL)
    before = current_rss_bytes()
    copy = pickle.loads(blob)
    held = current_rss_bytes() - before
    del copy
    return len(blob), held


def compare(rows: List[dict]) -> List[str]:
    """Keys whose values differ between the variants that report them."""
    diffs = []
    for r in rows[1:]:
        for k, v in r['metrics'].items():
            ref = next((x['metrics'][k] for x in rows if k in x['metrics']), v)
            if v != ref:
                diffs.append(f'{r["variant"]} {k}: {v} vs {ref}')
    return diffs


def table(rows: List[dict]) -> str:
    base = next((r['seconds'] for r in rows if r['variant'] == 'mmdet'), None)
    cpu_base = next((r['cpu_seconds'] for r in rows if r['variant'] == 'mmdet'), None)
    out = ['| variant | time (s) | x mmdet | CPU time (s) | x mmdet | peak RSS (GB) | '
           'sent (MB) | held (MB) | detections |', '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        ratio = f'{r["seconds"] / base:.2f}' if base else '-'
        cpu = f'{r["cpu_seconds"] / cpu_base:.2f}' if cpu_base else '-'
        out.append(f'| {r["variant"]} | {r["seconds"]:.1f} | {ratio} | '
                   f'{r["cpu_seconds"]:.1f} | {cpu} | {r["rss_peak"] / 1e9:.2f} | '
                   f'{r["results_bytes"] / 1e6:.0f} | {r["results_rss"] / 1e6:.0f} | '
                   f'{r["detections"]:,} |')
    return '\n'.join(out)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.child:
        print_result(run_child(args))
        return
    with tempfile.TemporaryDirectory() as tmp:
        ann = args.ann
        if ann is None:
            sys.path.insert(0, osp.join(REPO, 'tools', 'misc'))
            from make_synthetic_coco import make_synthetic_coco
            ann = osp.join(tmp, 'synthetic.json')
            with open(ann, 'w') as f:
                json.dump(make_synthetic_coco(args.images, args.seed), f)
        rows = []
        for v in args.variants:
            cmd = [sys.executable, osp.abspath(__file__), '--child', v, '--ann', ann,
                   '--per-pair', str(args.per_pair), '--seed', str(args.seed),
                   '--metrics', *args.metrics]
            rows.append(run_measured(cmd, f'variant {v}', dict(PYTHONPATH=REPO)))
            print(f'{v}: {rows[-1]["seconds"]:.1f}s, peak RSS '
                  f'{rows[-1]["rss_peak"] / 1e9:.2f} GB', flush=True)
    print(table(rows))
    diffs = compare(rows)
    print('numbers: ' + ('identical in every variant' if not diffs else
                         f'{len(diffs)} differ:\n  ' + '\n  '.join(diffs[:20])))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(args=vars(args), rows=rows, differences=diffs), f, indent=1)


if __name__ == '__main__':
    main()
