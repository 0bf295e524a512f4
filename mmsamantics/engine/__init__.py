"""Running the package with mmengine: hooks, and what train/test tools need before the
Runner starts (config loading, preflight of files, CPU distributed launch)."""
from .hooks import InContextEpochHook, TrainLossEarlyStoppingHook
from .launch import load_tool_config, setup_cpu_distributed
from .preflight import check_resources, missing_resources

__all__ = ['InContextEpochHook', 'TrainLossEarlyStoppingHook', 'load_tool_config',
           'setup_cpu_distributed', 'check_resources', 'missing_resources']
