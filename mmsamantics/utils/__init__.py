from .checkpoint import (MissingResourceError, load_state_dict_file, load_strict,
                         register_checkpoint_safe_globals)
from .frozen import freeze

__all__ = ['MissingResourceError', 'load_state_dict_file', 'load_strict',
           'register_checkpoint_safe_globals', 'freeze']
from .launch import load_tool_config, setup_cpu_distributed  # noqa: E402
from .preflight import check_resources, missing_resources  # noqa: E402

__all__ += ['load_tool_config', 'setup_cpu_distributed', 'check_resources', 'missing_resources']
from .model_loading import build_dataset, build_model  # noqa: E402

__all__ += ['build_dataset', 'build_model']
