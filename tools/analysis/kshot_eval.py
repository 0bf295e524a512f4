"""k-shot evaluation over reference-set seeds, modes and shots, with a mean ± std summary.

    python tools/misc/make_reference_sets.py data/toy_world/annotations/instances_train.json \
        --out-dir data/toy_world/refs_authors --min-area 256 --border 4 --frame 6
    python tools/analysis/kshot_eval.py configs/insam_detr_toy_shape.py \
        work_dirs/demo/epoch_12.pth --ref-dir data/toy_world/refs_authors \
        --ref-controls family blank

The defaults are the paper's protocol: shots 1 5 10 (the authors report 10), reference sets
of seeds 42 123 33, oracle and open mode.

Per seed the references' tokens are encoded ONCE into a bank (max k shots), then every
(k, mode) run reads them from it. Each run's metrics go to WORK_DIR/metrics/*.json (runs
already done are skipped, so an interrupted sweep resumes); the summary table goes to
WORK_DIR/kshot_summary.md and .json. ``--ref-controls`` adds control runs (each class
given another class's references, or constant reference images;
``family`` = cyclic, ``--control-seeds`` random derangements, same-attribute, same-kind)
reported as ΔAP against the normal runs and in a table per (mode, shots) with per-class
AP50 drops and whether the right references beat every control per class on average:
the test that a model uses its references at all. With
``--launcher pytorch`` (torchrun) every run is distributed like tools/dist_test.sh.
``--summarize-only`` re-reads the metric files, e.g. those written by
``tools/test.py --metrics-out`` on a cluster.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
from typing import Optional

from mmengine.config import Config, DictAction
from mmengine.dist import barrier, get_rank

import mmsamantics  # noqa: F401
from mmsamantics.apis import build_model, make_reference_bank
from mmsamantics.datasets.reference_controls import expand_controls
from mmsamantics.engine import (add_control_family_args, build_runner, check_resources,
                                prepare_device, setup_cpu_distributed)
from mmsamantics.evaluation import (apply_reference_options, control_deltas, control_tables,
                                    enable_classwise, summarize)
from mmsamantics.utils import MissingResourceError
from mmsamantics.utils.config_paths import load_config


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config')
    p.add_argument('checkpoint', nargs='?', default=None)
    p.add_argument('--ref-dir', help='folder of refs_seed{seed}.json files')
    p.add_argument('--seeds', type=int, nargs='+', default=[42, 123, 33])
    p.add_argument('--shots', type=int, nargs='+', default=[1, 5, 10])
    p.add_argument('--modes', nargs='+', default=['oracle', 'open'],
                   choices=['oracle', 'open'])
    add_control_family_args(p, 'also run these reference controls (reported as ΔAP)')
    p.add_argument('--work-dir', default=None)
    p.add_argument('--no-bank', action='store_true',
                   help='encode references during each run instead of once per seed')
    p.add_argument('--summarize-only', action='store_true')
    p.add_argument('--allow-pytorch-deform-attn', action='store_true',
                   help="on a GPU whose mmcv was built without CUDA ops, run mmcv's "
                   'pure-PyTorch deformable attention and focal loss (slow) instead of '
                   'stopping (docs/gpu.md)')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args()


def load_cfg(args) -> Config:
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    return cfg


def run_name(seed: int, shots: int, mode: str, control: Optional[str] = None) -> str:
    return f'seed{seed}_{shots}shot_{mode}' + (f'_{control}' if control else '')


def main() -> None:
    args = parse_args()
    try:
        args.ref_controls = expand_controls(args.ref_controls, args.control_seeds)
    except ValueError as e:
        sys.exit(f'error: --ref-controls: {e}')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    if not args.summarize_only:
        prepare_device(args.allow_pytorch_deform_attn)
    work = args.work_dir or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0], 'kshot')
    metrics_dir = osp.join(work, 'metrics')
    if not args.summarize_only:
        if not args.ref_dir:
            sys.exit('error: --ref-dir is required (make it with '
                     'tools/misc/make_reference_sets.py)')
        if args.checkpoint is not None and not osp.isfile(args.checkpoint):
            sys.exit(f'error: checkpoint {args.checkpoint!r} not found')
        ref_sets = {s: osp.join(args.ref_dir, f'refs_seed{s}.json') for s in args.seeds}
        missing = [p for p in ref_sets.values() if not osp.isfile(p)]
        if missing:
            sys.exit(f'error: reference sets not found: {missing}. Make them with '
                     f'tools/misc/make_reference_sets.py ... --out-dir {args.ref_dir} '
                     f'--seeds {" ".join(map(str, args.seeds))}')
        sweep(args, ref_sets, work, metrics_dir)
    if get_rank() == 0:
        write_summary(metrics_dir, work, class_splits(load_cfg(args)))


def class_splits(cfg: Config) -> Optional[dict]:
    """The class splits of the config's test metric (its ``class_splits`` or file)."""
    ev = cfg.test_evaluator
    for e in ev if isinstance(ev, (list, tuple)) else [ev]:
        if e.get('class_splits'):
            return dict(e['class_splits'])
        path = e.get('class_splits_file')
        if path and osp.isfile(path):
            with open(path) as f:
                return json.load(f)
    return None


def sweep(args, ref_sets, work, metrics_dir) -> None:
    os.makedirs(metrics_dir, exist_ok=True)
    model = None
    for seed, ref_set in ref_sets.items():
        bank = None
        if not args.no_bank:
            bank = osp.join(work, 'banks', f'bank_seed{seed}_{max(args.shots)}shot.pth')
            if not osp.isfile(bank) and get_rank() == 0:
                if model is None:
                    model = build_model(load_cfg(args), args.checkpoint)
                meta = make_reference_bank(model, load_cfg(args), ref_set, max(args.shots),
                                           bank)
                print(f'seed {seed}: {len(meta["classes"])} classes encoded -> {bank}')
            barrier()
        for k in args.shots:
            for mode in args.modes:
                for control in [None] + list(args.ref_controls):
                    run_one(args, seed, k, mode, control, ref_set,
                            None if control == 'blank' else bank, work, metrics_dir)


def run_one(args, seed: int, k: int, mode: str, control: Optional[str], ref_set: str,
            bank: Optional[str], work: str, metrics_dir: str) -> None:
    """One evaluation run (skipped when its metrics file exists: resume)."""
    name = run_name(seed, k, mode, control)
    out = osp.join(metrics_dir, name + '.json')
    if osp.isfile(out):
        return
    cfg = load_cfg(args)
    try:
        apply_reference_options(cfg, ref_set, k, bank, mode, ref_control=control)
        check_resources(cfg, 'test')
    except (ValueError, MissingResourceError) as e:
        sys.exit(f'error: {e}')
    if args.ref_controls:  # the control table compares classes
        enable_classwise(cfg)
    cfg.load_from = args.checkpoint
    cfg.work_dir = osp.join(work, 'runs', name)
    setup_cpu_distributed(cfg, args.launcher)
    metrics = build_runner(cfg).test()
    if get_rank() == 0:
        with open(out, 'w') as f:
            json.dump(dict(seed=seed, shots=k, mode=mode, ref_control=control, ref_set=ref_set,
                           checkpoint=args.checkpoint, metrics=metrics), f, indent=1)


def write_summary(metrics_dir: str, work: str, splits: Optional[dict] = None) -> None:
    records = []
    for p in sorted(glob.glob(osp.join(metrics_dir, '*.json'))):
        with open(p) as f:
            records.append(json.load(f))
    if not records:
        sys.exit(f'error: no metric files in {metrics_dir}')
    table, data = summarize(records)
    deltas = control_deltas(data)
    if deltas:
        names = list(next(iter(deltas.values())))
        rows = [f'| {run} | ' + ' | '.join(f'{d[m]:+.3f}' for m in names) + ' |'
                for run, d in deltas.items()]
        table += ('\n\nΔ against the normal run (a model that uses its references loses AP):\n'
                  '| control | ' + ' | '.join(names) + ' |\n' + '|---' * (1 + len(names))
                  + '|\n' + '\n'.join(rows))
    controls_md, controls = control_tables(records, splits)
    if controls:
        table += ('\n\nReference controls, box AP50 (seeds averaged; passes: the right '
                  'references beat the control per class on average, in every split):\n\n'
                  + controls_md)
    with open(osp.join(work, 'kshot_summary.md'), 'w') as f:
        f.write(table + '\n')
    extra = dict(deltas=deltas) if deltas else {}
    if controls:
        extra['controls'] = controls
    with open(osp.join(work, 'kshot_summary.json'), 'w') as f:
        json.dump(dict(data, **extra), f, indent=1)
    print(f'\nk-shot summary (mean ± std over seeds), {len(records)} runs:\n{table}\n'
          f'-> {osp.join(work, "kshot_summary.md")}')


if __name__ == '__main__':
    main()
