"""Every in-context method on the same reference sets: one table (markdown + JSON), one plot.

    python tools/analysis/leaderboard.py \
        configs/insam_detr_toy_shape.py:work_dirs/demo/epoch_12.pth \
        configs/matcher_toy.py configs/samic_toy.py:SAMIC_CKPT configs/persam_toy.py \
        --ref-dir data/toy_world/refs --seeds 42 123 33 --shots 1 --modes oracle open \
        --data-root data/toy_world --work-dir work_dirs/leaderboard

Each METHOD is ``CONFIG[:CHECKPOINT]`` (no checkpoint: the config's own frozen weights, as
for the training-free methods). Every (method, seed, shots, mode) run evaluates the test
dataset of the method's config with the reference set ``REF_DIR/refs_seed{seed}.json`` and
its first k references per class (``--data-root`` points every method at the same data),
records its COCO metrics, test-loop speed, peak memory and parameter counts in
WORK_DIR/runs/<method>/<run>.json (existing runs are skipped: an interrupted sweep
resumes), and finally writes WORK_DIR/leaderboard.md, .json and .png (mean ± std over the
seeds). ``--ref-controls family`` also runs every method with wrong references (the
derangements of docs/toy_semantics.md) and adds, per method, the table of what each control
costs, per split and per class: a method that uses its references loses AP under all. With
``--launcher pytorch`` (torchrun) every run is distributed like tools/dist_test.sh;
``--summarize-only`` re-reads the run files.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
from typing import List, Optional, Tuple

from mmengine.config import Config, DictAction
from mmengine.dist import barrier, get_rank

import mmsamantics  # noqa: F401
from mmsamantics.analysis.leaderboard import (TestSpeedHook, leaderboard_markdown,
                                              parameter_counts, plot_leaderboard,
                                              summarize_leaderboard)
from mmsamantics.datasets.reference_controls import expand_controls
from mmsamantics.engine import (add_control_family_args, build_runner, check_resources,
                                prepare_device, setup_cpu_distributed)
from mmsamantics.evaluation import apply_reference_options, control_tables, enable_classwise
from mmsamantics.utils import MissingResourceError
from mmsamantics.utils.profiling import PeakMemory
from mmsamantics.utils.config_paths import load_config


def parse_args(argv: Optional[List[str]] = None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('methods', nargs='+', metavar='CONFIG[:CHECKPOINT]')
    p.add_argument('--ref-dir', help='folder of refs_seed{seed}.json files')
    p.add_argument('--seeds', type=int, nargs='+', default=[42, 123, 33])
    p.add_argument('--shots', type=int, nargs='+', default=[1])
    p.add_argument('--modes', nargs='+', default=['oracle', 'open'],
                   choices=['oracle', 'open'])
    p.add_argument('--data-root', help='evaluate every method on this in-context dataset '
                   '(annotations/instances_val.json, splits.json, val/, train/)')
    add_control_family_args(p, 'also run every method with these reference controls')
    p.add_argument('--work-dir', default='work_dirs/leaderboard')
    p.add_argument('--summarize-only', action='store_true')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='overrides applied to every method')
    return p.parse_args(argv)


def parse_method(spec: str) -> Tuple[str, str, Optional[str]]:
    """``CONFIG[:CHECKPOINT]`` -> (name, config, checkpoint); the name is the config stem."""
    config, _, ckpt = spec.partition(':')
    if not osp.isfile(config):
        sys.exit(f'error: config {config!r} not found')
    if ckpt and not osp.isfile(ckpt):
        sys.exit(f'error: checkpoint {ckpt!r} of {config} not found')
    return osp.splitext(osp.basename(config))[0], config, ckpt or None


def point_at(cfg: Config, root: str) -> None:
    """Evaluate on ``root``: the test dataset and every test metric's files."""
    root = root.rstrip('/') + '/'
    ds = cfg.test_dataloader.dataset
    ds.update(data_root=root, ann_file='annotations/instances_val.json',
              data_prefix=dict(img='val/'), ref_ann_file='annotations/instances_train.json',
              ref_img_prefix='train/')
    for ev in _evaluators(cfg):
        ev['ann_file'] = root + 'annotations/instances_val.json'
        ev['class_splits_file'] = root + 'annotations/splits.json'


# every method reports the same COCO items: AR@100 too (the paper's AR)
COCO_ITEMS = ['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@100']


def _evaluators(cfg: Config) -> list:
    return cfg.test_evaluator if isinstance(cfg.test_evaluator, list) \
        else [cfg.test_evaluator]


def run_one(args, name: str, config: str, ckpt: Optional[str], seed: int, k: int,
            mode: str, control: Optional[str] = None) -> None:
    """One evaluation run, skipped when its record exists (resume)."""
    out = osp.join(args.work_dir, 'runs', name, f'seed{seed}_{k}shot_{mode}'
                   + (f'_{control}' if control else '') + '.json')
    if osp.isfile(out):
        return
    cfg = load_config(config)
    if args.data_root:
        point_at(cfg, args.data_root)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    for ev in _evaluators(cfg):
        if str(ev.get('type', '')).endswith('CocoMetric'):
            ev['metric_items'] = list(COCO_ITEMS)
    ref_set = osp.join(args.ref_dir, f'refs_seed{seed}.json')
    try:
        apply_reference_options(cfg, ref_set, k, None, mode, ref_control=control or 'none')
        check_resources(cfg, 'test')
    except (ValueError, MissingResourceError) as e:
        sys.exit(f'error: {name}: {e}')
    if args.ref_controls:  # the control table compares classes
        enable_classwise(cfg)
    cfg.load_from = ckpt
    cfg.work_dir = osp.join(args.work_dir, 'work', name, osp.basename(out)[:-5])
    setup_cpu_distributed(cfg, args.launcher)
    runner = build_runner(cfg)
    speed = TestSpeedHook()
    runner.register_hook(speed)
    with PeakMemory() as mem:
        metrics = runner.test()
    trainable, frozen = parameter_counts(runner.model)
    if get_rank() == 0:
        os.makedirs(osp.dirname(out), exist_ok=True)
        peak = mem.cuda_peak if mem.cuda_peak is not None else mem.rss_peak
        with open(out, 'w') as f:
            json.dump(dict(method=name, config=config, checkpoint=ckpt, seed=seed, shots=k,
                           mode=mode, ref_control=control, metrics=metrics, images=speed.images,
                           seconds=speed.seconds, peak_mem_mb=peak / 2 ** 20,
                           peak_mem_kind='cuda' if mem.cuda_peak is not None else 'rss',
                           params_trainable=trainable, params_frozen=frozen), f, indent=1)


def splits_of(config: str, data_root: Optional[str]) -> Optional[dict]:
    """The class splits the method's metric reports (``--data-root``'s splits.json)."""
    path = osp.join(data_root, 'annotations', 'splits.json') if data_root else None
    if path is None:
        evs = _evaluators(load_config(config))
        path = next((e.get('class_splits_file') for e in evs
                     if e.get('class_splits_file')), None)
    if path and osp.isfile(path):
        with open(path) as f:
            return json.load(f)
    if path:
        print(f'warning: class splits file {path} not found: the control tables judge '
              'all classes together (pass --data-root with annotations/splits.json)')
    return None


def load_records(work_dir: str, names: List[str]) -> List[dict]:
    records = []
    for name in names:
        for p in sorted(glob.glob(osp.join(work_dir, 'runs', name, '*.json'))):
            with open(p) as f:
                records.append(json.load(f))
    return records


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    try:
        args.ref_controls = expand_controls(args.ref_controls, args.control_seeds)
    except ValueError as e:
        sys.exit(f'error: --ref-controls: {e}')
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    methods = [parse_method(m) for m in args.methods]
    names = [n for n, _, _ in methods]
    if len(set(names)) != len(names):
        sys.exit(f'error: two methods share a config name: {names}')
    if not args.summarize_only:
        if not args.ref_dir:
            sys.exit('error: --ref-dir is required (make it with '
                     'tools/misc/make_reference_sets.py)')
        missing = [s for s in args.seeds
                   if not osp.isfile(osp.join(args.ref_dir, f'refs_seed{s}.json'))]
        if missing:
            sys.exit(f'error: no reference sets for seeds {missing} in {args.ref_dir}: make '
                     'them with tools/misc/make_reference_sets.py ... --out-dir '
                     f'{args.ref_dir} --seeds {" ".join(map(str, missing))}')
        prepare_device()
        for name, config, ckpt in methods:
            for seed in args.seeds:
                for k in args.shots:
                    for mode in args.modes:
                        for control in [None] + args.ref_controls:
                            run_one(args, name, config, ckpt, seed, k, mode, control)
        barrier()
    if get_rank() != 0:
        return
    records = load_records(args.work_dir, names)
    if not records:
        sys.exit(f'error: no run records under {osp.join(args.work_dir, "runs")}')
    summary = summarize_leaderboard([r for r in records if not r.get('ref_control')])
    table = leaderboard_markdown(summary)
    controls = {}
    for name, config, _ in methods:
        md, controls[name] = control_tables([r for r in records if r['method'] == name],
                                            splits_of(config, args.data_root))
        if md:
            table += f'\n\nReference controls of {name}, box AP50 (seeds averaged):\n\n{md}'
    controls = {n: c for n, c in controls.items() if c}
    with open(osp.join(args.work_dir, 'leaderboard.md'), 'w') as f:
        f.write(table + '\n')
    with open(osp.join(args.work_dir, 'leaderboard.json'), 'w') as f:
        json.dump(dict(summary, controls=controls) if controls else summary, f, indent=1)
    plot_leaderboard(summary, osp.join(args.work_dir, 'leaderboard.png'))
    print(f'\nleaderboard ({len(records)} runs; AP x 100, mean ± std over seeds):\n{table}\n'
          f'-> {osp.join(args.work_dir, "leaderboard.md")}, .json, .png')


if __name__ == '__main__':
    main()
