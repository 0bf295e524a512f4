"""mmsamantics: in-context semantics for Segment Anything, as an MMDetection 3.x plugin.

Importing the package registers every module into mmdet's registries (configs use
``custom_imports=dict(imports=['mmsamantics'])``).
"""
from .version import __version__, version_info

_RANGES = {  # package: (min inclusive, max exclusive)
    'mmcv': ('2.0.0rc4', '2.2.0'),
    'mmengine': ('0.10.0', '1.0.0'),
    'mmdet': ('3.3.0', '3.4.0'),
}


def _check_versions() -> None:
    import importlib

    from mmengine.utils import digit_version
    for name, (lo, hi) in _RANGES.items():
        try:
            mod = importlib.import_module(name)
        except ImportError as e:
            raise ImportError(f'mmsamantics needs {name}>={lo},<{hi}; it is not installed '
                              f'({e}). Run `make env` (tools/setup_env.sh).') from e
        v = mod.__version__
        if not digit_version(lo) <= digit_version(v) < digit_version(hi):
            raise ImportError(f'mmsamantics needs {name}>={lo},<{hi}, found {v}. Run '
                              '`make env` or install a supported version.')


_check_versions()

from . import datasets, engine, evaluation, models  # noqa: E402,F401  (registers modules)
from . import registry  # noqa: E402,F401  (the mmsamantics scope, mmsamantics:: configs)
from .utils import register_checkpoint_safe_globals  # noqa: E402

register_checkpoint_safe_globals()

__all__ = ['__version__', 'version_info']
