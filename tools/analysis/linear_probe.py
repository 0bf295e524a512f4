"""Linear probing of frozen encoders (paper §4, Table 1, supp. Fig. 6): train one linear
head per config, then write a top-1/top-5 table and the loss/accuracy curves, e.g.

    # the random tiny encoders on the generated toy data set, features cached (~30 s on 2
    # cores); the toy SAM 3 (linear-probe_sam3-toy_*) needs tools/misc/pretrain_toy_sam3.py
    python tools/analysis/linear_probe.py configs/linear_probe/*-tiny_1xb16-10e_toy-cls.py \
        --toy-data data/toy_classification --cache --work-dir work_dirs/linear_probe_toy
    # the paper's runs (ImageNet under data/imagenet/, weights under checkpoints/)
    python tools/analysis/linear_probe.py configs/linear_probe/linear-probe_sam-vit-h_*.py \
        configs/linear_probe/linear-probe_dinov2-vit-s14_*.py --cache

Writes WORK_DIR/<config name>/ (mmengine logs, vis_data/scalars.json, feature_cache/; a
cache of other encoder weights, e.g. a checkpoint re-saved at the same path, is re-encoded),
WORK_DIR/probe_results.md, probe_results.json and probe_curves.png. AMP (fp16) is used
exactly when a GPU is present unless --amp says otherwise.
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import Config, DictAction

import mmsamantics.probing as probing
from mmsamantics.utils import MissingResourceError
from mmsamantics_toy.toy_classification import (is_current_toy_classification,
                                                make_toy_classification)
from mmsamantics.utils.config_paths import load_config as load_project_config


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Linear probing of frozen encoders')
    p.add_argument('configs', nargs='+', help='probe config files (configs/linear_probe/)')
    p.add_argument('--work-dir', default='work_dirs/linear_probe')
    p.add_argument('--cache', action='store_true',
                   help='encode each image once, train the head on the stored features; a '
                   'cache is reused only for the same config, encoder weights (SHA-1 of the '
                   'loaded tensors, so a checkpoint replaced at the same path is noticed) '
                   'and preprocessing, and re-encoded otherwise')
    p.add_argument('--rebuild-cache', action='store_true',
                   help='re-encode even if the cache matches')
    p.add_argument('--amp', choices=probing.probe_runner.AMP_CHOICES, default='auto',
                   help='fp16 mixed precision: auto = on exactly when a GPU is present')
    p.add_argument('--toy-data', metavar='DIR',
                   help='generate the toy classification data set in DIR (unless current) '
                   'and point every config at it')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override settings of every config, e.g. train_cfg.max_epochs=2')
    return p.parse_args(argv)


def load_config(path, args) -> Config:
    if not osp.isfile(path):
        sys.exit(f'error: config {path!r} not found')
    cfg = load_project_config(path)
    if args.toy_data:
        root = args.toy_data.rstrip('/') + '/'
        for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
            cfg[key].dataset.data_root = root
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    try:
        probing.resolve_amp(args.amp)  # fail before any data is generated or encoded
    except ValueError as e:
        sys.exit(f'error: {e}')
    if args.toy_data and not is_current_toy_classification(args.toy_data):
        make_toy_classification(args.toy_data)
    cfgs = [(osp.splitext(osp.basename(c))[0], load_config(c, args)) for c in args.configs]
    names = [n for n, _ in cfgs]
    if len(set(names)) != len(names):
        sys.exit(f'error: config names must be unique, got {names}')
    problems = [f'{n}: {line}' for n, c in cfgs for line in probing.missing_probe_resources(c)]
    if problems:  # all configs checked before the first long run starts
        sys.exit('error: missing files:\n  - ' + '\n  - '.join(problems) + '\nPut the '
                 'weights under checkpoints/ and ImageNet under data/imagenet/ (train/<class>/,'
                 ' val/<class>/), or use the toy configs with --toy-data.')
    os.makedirs(args.work_dir, exist_ok=True)
    results = []
    for name, cfg in cfgs:
        try:
            r = probing.run_linear_probe(cfg, osp.join(args.work_dir, name), args.cache,
                                         args.amp, args.rebuild_cache, name)
        except (MissingResourceError, ValueError) as e:
            sys.exit(f'error in {name}: {e}')
        results.append(r)
        print(f'{name}: top-1 {r["top1"]:.2f}  top-5 {r["top5"]:.2f}')
    table = probing.format_results_table(results)
    md, js = osp.join(args.work_dir, 'probe_results.md'), osp.join(args.work_dir,
                                                                    'probe_results.json')
    with open(md, 'w') as f:
        f.write(table)
    with open(js, 'w') as f:
        json.dump(results, f, indent=1)
    curves = {probing.run_label(r['name']): r['scalars'] for r in results}
    png = probing.plot_curves(curves, osp.join(args.work_dir, 'probe_curves.png'))
    print(table + f'table: {md}\nresults: {js}\ncurves: {png}')


if __name__ == '__main__':
    main()
