"""Running the package with mmengine: hooks, and what train/test tools need before the
Runner starts (config loading, preflight of files and of the GPU stack, CPU distributed
launch)."""
from .hooks import InContextEpochHook, ReferencePrefetchHook, TrainLossEarlyStoppingHook
from .gpu_stack import GPUStackError, check_gpu_stack, use_pytorch_ops
from .launch import (CONTROL_HELP, add_control_family_args, control_arg, finish_distributed,
                     load_tool_config, prepare_device, set_local_device,
                     setup_cpu_distributed)
from .preflight import check_resources, missing_resources
from .runner import InContextRunner, build_runner, evaluation_switches

__all__ = ['InContextEpochHook', 'ReferencePrefetchHook', 'TrainLossEarlyStoppingHook',
           'load_tool_config', 'finish_distributed', 'setup_cpu_distributed', 'prepare_device',
           'set_local_device', 'GPUStackError', 'check_gpu_stack', 'use_pytorch_ops',
           'check_resources', 'missing_resources', 'CONTROL_HELP', 'add_control_family_args',
           'control_arg', 'InContextRunner', 'build_runner', 'evaluation_switches']
