from .class_splits import CLASS_SPLIT_NAMES, named_class_splits, split_classes
from .feature_cache import CACHE_VERSION, FeatureCache, cache_relpath
from .in_context_coco import InContextCocoDataset
from .reference_sets import eligible_references, load_reference_set, select_reference_set
from .toy_world import is_current_toy_world, make_toy_world, toy_classes, toy_splits
from .transforms import *  # noqa: F401,F403

__all__ = ['InContextCocoDataset', 'is_current_toy_world', 'make_toy_world', 'toy_classes',
           'toy_splits']
__all__ += ['CLASS_SPLIT_NAMES', 'named_class_splits', 'split_classes']
__all__ += ['eligible_references', 'load_reference_set', 'select_reference_set']
__all__ += ['CACHE_VERSION', 'FeatureCache', 'cache_relpath']
