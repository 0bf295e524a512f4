from .class_splits import CLASS_SPLIT_NAMES, fold_classes, named_class_splits, split_classes
from .coco20i import CocoTwentyIDataset
from .feature_cache import CACHE_VERSION, FeatureCache, cache_relpath
from .fss1000 import FSS1000Dataset
from .fss_episodes import FewShotEpisodeDataset, decode_mask, encode_mask
from .in_context_coco import InContextCocoDataset
from .pascal5i import PascalFiveIDataset
from .reference_sets import eligible_references, load_reference_set, select_reference_set
from .toy_class_names import toy_classes, toy_splits
from .transforms import *  # noqa: F401,F403

__all__ = ['InContextCocoDataset', 'toy_classes', 'toy_splits']
__all__ += ['CLASS_SPLIT_NAMES', 'named_class_splits', 'split_classes']
__all__ += ['eligible_references', 'load_reference_set', 'select_reference_set']
__all__ += ['CACHE_VERSION', 'FeatureCache', 'cache_relpath']
__all__ += ['FewShotEpisodeDataset', 'PascalFiveIDataset', 'CocoTwentyIDataset', 'FSS1000Dataset',
            'decode_mask', 'encode_mask', 'fold_classes']
