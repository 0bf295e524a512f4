"""Test a detector (mmdet's tools/test.py CLI), e.g.

    python tools/test.py configs/insam_detr_toy.py \
        work_dirs/insam-detr_sam-tiny_1xb4-12e_toy-world/epoch_12.pth
    python tools/test.py CONFIG CKPT --cfg-options test_dataloader.dataset.mode=open
    tools/dist_test.sh CONFIG CKPT 8
    # k-shot protocol: a reference set of one seed, its tokens precomputed in a bank
    python tools/test.py CONFIG CKPT --ref-set refs_seed42.json --shots 5 \
        --ref-bank bank_seed42.pth --mode open --metrics-out metrics.json
    # does the model use its references? every class given another class's references
    python tools/test.py CONFIG CKPT --mode open --ref-control cyclic
    python tools/test.py CONFIG CKPT --mode open --ref-control same-attribute
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import DictAction
from mmengine.dist import get_rank

import mmsamantics  # noqa: F401
from mmsamantics.evaluation import apply_reference_options, enable_classwise
from mmsamantics.engine import (CONTROL_HELP, build_runner, check_resources, control_arg,
                               finish_distributed, load_tool_config, setup_cpu_distributed)
from mmsamantics.utils import MissingResourceError


def parse_args():
    p = argparse.ArgumentParser(description='Test (and eval) a detector')
    p.add_argument('config', help='test config file path')
    p.add_argument('checkpoint', nargs='?', default=None,
                   help='checkpoint file (omit for models with nothing trained)')
    p.add_argument('--work-dir', help='the dir to save evaluation results')
    p.add_argument('--out', help='dump predictions to a pickle file')
    p.add_argument('--mode', choices=['oracle', 'open'],
                   help='in-context evaluation mode (overrides the config)')
    p.add_argument('--ref-set', help='k-shot reference-set JSON (make_reference_sets.py)')
    p.add_argument('--shots', type=int, help='k: references per class')
    p.add_argument('--ref-bank', help='precomputed reference tokens (encode_references.py)')
    p.add_argument('--ref-control', type=control_arg,
                   help=CONTROL_HELP + '; compare with the normal run (a model that ignores '
                   'its references scores the same); per-class AP is reported with it')
    p.add_argument('--metrics-out', help='write the metrics to this JSON file (rank 0)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings')
    p.add_argument('--allow-pytorch-deform-attn', action='store_true',
                   help="on a GPU whose mmcv was built without CUDA ops, run mmcv's "
                   'pure-PyTorch deformable attention and focal loss (slow) instead of '
                   'stopping (docs/gpu.md)')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return p.parse_args()


def main():
    args = parse_args()
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        sys.exit(f'error: checkpoint {args.checkpoint!r} not found')
    cfg = load_tool_config(args, 'test')
    cfg.load_from = args.checkpoint
    try:
        apply_reference_options(cfg, args.ref_set, args.shots, args.ref_bank,
                                ref_control=args.ref_control)
        if args.ref_control not in (None, 'none'):
            enable_classwise(cfg)
        check_resources(cfg, 'test')
    except (ValueError, MissingResourceError) as e:
        sys.exit(f'error: {e}')
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            sys.exit('error: --out must be a .pkl file')
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(dict(type='DumpDetResults', out_file_path=args.out))
    setup_cpu_distributed(cfg, args.launcher)
    metrics = build_runner(cfg).test()
    if args.metrics_out and get_rank() == 0:
        os.makedirs(osp.dirname(osp.abspath(args.metrics_out)), exist_ok=True)
        with open(args.metrics_out, 'w') as f:
            json.dump(metrics, f, indent=1)
    finish_distributed()


if __name__ == '__main__':
    main()
