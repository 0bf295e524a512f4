"""What tools/train.py and tools/test.py need beyond mmdet's versions of them."""
import argparse
import os
import sys
from typing import Optional

import torch
import torch.distributed as dist
from mmengine.config import Config
from mmengine.logging import print_log

from ..datasets.reference_controls import normalize_control
from .gpu_stack import GPUStackError, check_gpu_stack, visible_nvidia_gpus

CONTROL_HELP = ("a reference control (docs/toy_semantics.md): 'cyclic' (= 'shuffled', each "
                "class gets the next class's references), 'random-<seed>' (a random "
                "derangement), 'same-attribute' / 'same-kind' (for '<attribute> <kind>' class "
                "names), 'blank' (constant reference images); 'none' removes a control the "
                'config carries')


def control_arg(value: str) -> str:
    """argparse type of a ``--ref-control`` value: its canonical name (``'none'`` kept)."""
    try:
        return normalize_control(value) or 'none'
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_control_family_args(parser: argparse.ArgumentParser, what: str) -> None:
    """``--ref-controls`` and ``--control-seeds`` of the sweep tools (kshot_eval.py,
    leaderboard.py); ``what`` says what each control run adds, for the help."""
    parser.add_argument('--ref-controls', nargs='*', default=[],
                        help=f"{what}: 'family' (every derangement), 'random' (one per "
                        "--control-seeds), 'cyclic', 'random-<seed>', 'same-attribute', "
                        "'same-kind', 'blank'")
    parser.add_argument('--control-seeds', type=int, nargs='+', default=[0, 1, 2],
                        help='seeds of the random derangements')


def set_local_device() -> Optional[torch.device]:
    """``torch.cuda.set_device(LOCAL_RANK)``: each torchrun process on its own GPU.

    Without it every process of a node opens (and allocates on) GPU 0. A no-op without
    CUDA.

    Returns:
        ``cuda:LOCAL_RANK``, or None without CUDA.

    Raises:
        RuntimeError: ``LOCAL_RANK`` is not below the number of visible GPUs.
    """
    if not torch.cuda.is_available():
        return None
    local_rank, count = int(os.environ.get('LOCAL_RANK', 0)), torch.cuda.device_count()
    if not 0 <= local_rank < count:
        raise RuntimeError(f'LOCAL_RANK={local_rank} but this node has {count} visible '
                           f'GPU(s): start at most {count} processes per node '
                           '(--nproc_per_node) or widen CUDA_VISIBLE_DEVICES')
    torch.cuda.set_device(local_rank)
    return torch.device('cuda', local_rank)


def prepare_device(allow_pytorch_deform_attn: bool = False) -> str:
    """Bind this process to its GPU, then check the GPU stack (:func:`check_gpu_stack`).

    Binding first: the check runs a kernel on the current GPU, and under torchrun every
    process would otherwise create a context on GPU 0. Stops the tool (``SystemExit``) with
    the check's one-line message naming the fix.

    Returns:
        What will run, e.g. ``'cuda (mmcv CUDA ops, CUDA 12.8)'`` or ``'cpu'``.
    """
    try:
        set_local_device()
        what = check_gpu_stack(allow_pytorch_deform_attn)
    except (GPUStackError, RuntimeError) as e:
        sys.exit(f'error: {e}')
    return what


def finish_distributed() -> None:
    """End a distributed run cleanly: all ranks meet, then the process group is destroyed.

    Without it each rank tears its process group down in the interpreter's exit, at its own
    moment; a gloo rank whose peer has already gone can then abort ("terminate called without
    an active exception") after the run's work is done. A no-op outside a distributed run.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def setup_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Make ``--launcher pytorch`` work on machines without a GPU.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device`` and its DDP wrapper passes
    ``device_ids=[local_rank]``; both fail on CPU. Without CUDA, initialise a gloo process
    group first (the Runner then skips its own init) and wrap the model with
    ``device_ids=None``. With CUDA nothing changes. A machine whose GPUs torch cannot use
    is refused (never a silent CPU run): see :func:`check_gpu_stack`.
    """
    if launcher != 'pytorch' or torch.cuda.is_available():
        return  # slurm/mpi launchers are for GPU clusters: mmengine handles them
    if visible_nvidia_gpus():
        check_gpu_stack()  # raises GPUStackError with the fix
    if int(os.environ.get('RANK', 0)) == 0:
        print_log('no GPU on this machine: CPU processes over gloo', logger='current')
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
    from ..utils.config_paths import load_config
    from .preflight import check_resources
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    try:
        cfg = load_config(args.config)
    except FileNotFoundError as e:
        sys.exit(f'error: {e}')
    prepare_device(getattr(args, 'allow_pytorch_deform_attn', False))
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
