"""Training-loss and validation-accuracy curves of several linear-probe runs in one PNG
(paper supp. Fig. 6), from mmengine's vis_data/scalars.json, e.g.

    python tools/analysis/plot_probe_curves.py work_dirs/linear_probe_toy/probe_results.json \
        --out work_dirs/linear_probe_toy/curves.png
    python tools/analysis/plot_probe_curves.py work_dirs/lp/sam work_dirs/lp/dinov2 \
        --labels SAM DINOv2 --out curves.png

Each RUN is a run's work dir, a scalars.json, or a probe_results.json of linear_probe.py
(all its runs).
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmsamantics.probing import plot_curves, run_label


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Plot linear-probe loss / accuracy curves')
    p.add_argument('runs', nargs='+', help='run work dirs, scalars.json or probe_results.json')
    p.add_argument('--labels', nargs='+', help='one label per run (default: folder names)')
    p.add_argument('--out', default='probe_curves.png', help='output PNG')
    p.add_argument('--title', default='Linear probing')
    return p.parse_args(argv)


def expand(paths, labels):
    runs = {}
    for i, path in enumerate(paths):
        if path.endswith('probe_results.json') and osp.isfile(path):
            with open(path) as f:
                runs.update({run_label(r['name']): r['scalars'] for r in json.load(f)})
            continue
        label = labels[i] if labels else osp.basename(osp.normpath(
            osp.dirname(osp.dirname(osp.dirname(path))) if path.endswith('.json') else path))
        runs[label] = path
    return runs


def main(argv=None):
    args = parse_args(argv)
    if args.labels and len(args.labels) != len(args.runs):
        sys.exit(f'error: {len(args.labels)} labels for {len(args.runs)} runs')
    try:
        runs = expand(args.runs, args.labels)
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        print(plot_curves(runs, args.out, args.title))
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f'error: {e}')


if __name__ == '__main__':
    main()
