"""The ``mmsamantics`` registry scope: one child of each of mmdet's registries.

Every module of this package registers into mmdet's registries (``mmdet`` scope), so mmdet's
configs and tools build them. A config that inherits ours the OpenMMLab way
(``_base_ = 'mmsamantics::insam_detr/...'``) gets ``_scope_='mmsamantics'`` on every
component mmengine reads from that base: mmengine then looks for registries of the
``mmsamantics`` scope, here, whose lookups fall back to mmdet's (and so to mmengine's).

Importing this module also tells mmengine how to find this package's configs
(``mmsamantics::`` paths): through the package's own folder, which holds ``.mim/configs``
for a wheel and an editable install alike (an editable install's distribution location is
``site-packages``, where mmengine's default lookup would not find them).
"""
from mmdet import registry as mmdet_registry
from mmengine.config.utils import MODULE2PACKAGE
from mmengine.registry import Registry

# mmengine's config loader maps a scope to an importable name and locates the package
# folder by it: a module of this package (not a distribution name) makes it use the import
# system, which finds the folder of an editable checkout too
MODULE2PACKAGE.setdefault('mmsamantics', 'mmsamantics.version')

_NAMES = ('RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'DATASETS', 'DATA_SAMPLERS',
          'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'OPTIMIZERS',
          'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'METRICS',
          'EVALUATOR', 'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS', 'LOG_PROCESSORS')


def _child(name: str) -> Registry:
    """The ``mmsamantics`` child of mmdet's registry ``name``; building from it imports the
    package (which registers every module into mmdet's registries)."""
    parent = getattr(mmdet_registry, name)
    return Registry(parent.name, parent=parent, scope='mmsamantics', locations=['mmsamantics'])


RUNNERS = _child('RUNNERS')
RUNNER_CONSTRUCTORS = _child('RUNNER_CONSTRUCTORS')
LOOPS = _child('LOOPS')
HOOKS = _child('HOOKS')
DATASETS = _child('DATASETS')
DATA_SAMPLERS = _child('DATA_SAMPLERS')
TRANSFORMS = _child('TRANSFORMS')
MODELS = _child('MODELS')
MODEL_WRAPPERS = _child('MODEL_WRAPPERS')
WEIGHT_INITIALIZERS = _child('WEIGHT_INITIALIZERS')
OPTIMIZERS = _child('OPTIMIZERS')
OPTIM_WRAPPERS = _child('OPTIM_WRAPPERS')
OPTIM_WRAPPER_CONSTRUCTORS = _child('OPTIM_WRAPPER_CONSTRUCTORS')
PARAM_SCHEDULERS = _child('PARAM_SCHEDULERS')
METRICS = _child('METRICS')
EVALUATOR = _child('EVALUATOR')
TASK_UTILS = _child('TASK_UTILS')
VISUALIZERS = _child('VISUALIZERS')
VISBACKENDS = _child('VISBACKENDS')
LOG_PROCESSORS = _child('LOG_PROCESSORS')

__all__ = list(_NAMES)
