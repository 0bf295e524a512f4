"""What tools/train.py and tools/test.py need beyond mmdet's versions of them."""
import os

import torch
import torch.distributed as dist
from mmengine.config import Config


def setup_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Make ``--launcher pytorch`` work on machines without a GPU.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and its DDP wrapper passes
    ``device_ids=[local_rank]``; both fail on CPU. Without CUDA, initialise a gloo process
    group first (the Runner then skips its own init) and wrap the model with
    ``device_ids=None``. With CUDA nothing changes.
    """
    if launcher != 'pytorch' or torch.cuda.is_available():
        return  # slurm/mpi launchers are for GPU clusters: mmengine handles them
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo', rank=int(os.environ['RANK']),
                                world_size=int(os.environ['WORLD_SIZE']))
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper['device_ids'] = None
    wrapper.setdefault('broadcast_buffers', False)
    wrapper.setdefault('find_unused_parameters', cfg.get('find_unused_parameters', False))
    cfg.model_wrapper_cfg = wrapper


def load_tool_config(args, phase: str):
    """Config of a train/test tool run: file + ``--cfg-options`` + launcher + work dir.

    Stops with one readable message (``SystemExit``) when files the config needs are missing,
    before anything heavy is built.
    """
    import os.path as osp
    import sys

    from ..utils.checkpoint import MissingResourceError
    from .preflight import check_resources
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if getattr(args, 'mode', None) is not None:
        cfg.test_dataloader.dataset.mode = args.mode
    try:
        check_resources(cfg, phase)
    except MissingResourceError as e:
        sys.exit(f'error: {e}')
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    return cfg
