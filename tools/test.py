"""Test a detector (mmdet's tools/test.py CLI), e.g.

    python tools/test.py configs/insam_detr_toy.py work_dirs/insam_detr_toy/epoch_12.pth
    python tools/test.py CONFIG CKPT --cfg-options test_dataloader.dataset.mode=open
    tools/dist_test.sh CONFIG CKPT 8
"""
import argparse
import os.path as osp
import sys

from mmengine.config import DictAction
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

import mmsamantics  # noqa: F401
from mmsamantics.utils import load_tool_config, setup_cpu_distributed


def parse_args():
    p = argparse.ArgumentParser(description='Test (and eval) a detector')
    p.add_argument('config', help='test config file path')
    p.add_argument('checkpoint', nargs='?', default=None,
                   help='checkpoint file (omit for models with nothing trained)')
    p.add_argument('--work-dir', help='the dir to save evaluation results')
    p.add_argument('--out', help='dump predictions to a pickle file')
    p.add_argument('--mode', choices=['oracle', 'open'],
                   help='in-context evaluation mode (overrides the config)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return p.parse_args()


def main():
    args = parse_args()
    if args.checkpoint is not None and not osp.isfile(args.checkpoint):
        sys.exit(f'error: checkpoint {args.checkpoint!r} not found')
    cfg = load_tool_config(args, 'test')
    cfg.load_from = args.checkpoint
    if args.out is not None:
        if not args.out.endswith(('.pkl', '.pickle')):
            sys.exit('error: --out must be a .pkl file')
        cfg.test_evaluator = [cfg.test_evaluator] if isinstance(
            cfg.test_evaluator, dict) else list(cfg.test_evaluator)
        cfg.test_evaluator.append(dict(type='DumpDetResults', out_file_path=args.out))
    setup_cpu_distributed(cfg, args.launcher)
    runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
    runner.test()


if __name__ == '__main__':
    main()
