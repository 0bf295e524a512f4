"""Train a detector (mmdet's tools/train.py CLI), e.g.

    python tools/train.py configs/insam_detr_toy.py
    tools/dist_train.sh configs/insam_detr_coco.py 8
"""
import argparse

from mmengine.config import DictAction

import mmsamantics  # noqa: F401  (registers modules, allows safe --resume)
from mmsamantics.engine import (build_runner, finish_distributed, load_tool_config,
                               setup_cpu_distributed)


def parse_args():
    p = argparse.ArgumentParser(description='Train a detector')
    p.add_argument('config', help='train config file path')
    p.add_argument('--work-dir', help='the dir to save logs and models')
    p.add_argument('--amp', action='store_true', help='automatic mixed precision')
    p.add_argument('--auto-scale-lr', action='store_true', help='scale lr with batch size')
    p.add_argument('--resume', nargs='?', type=str, const='auto',
                   help='resume from this checkpoint, or from the latest one in work_dir')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, e.g. train_cfg.max_epochs=2')
    p.add_argument('--allow-pytorch-deform-attn', action='store_true',
                   help="on a GPU whose mmcv was built without CUDA ops, run mmcv's "
                   'pure-PyTorch deformable attention and focal loss (slow) instead of '
                   'stopping (docs/gpu.md)')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return p.parse_args()


def main():
    args = parse_args()
    cfg = load_tool_config(args, 'train')
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    setup_cpu_distributed(cfg, args.launcher)
    build_runner(cfg).train()
    finish_distributed()


if __name__ == '__main__':
    main()
