from .in_context_coco import InContextCocoDataset
from .toy_world import is_current_toy_world, make_toy_world, toy_classes, toy_splits
from .transforms import *  # noqa: F401,F403

__all__ = ['InContextCocoDataset', 'is_current_toy_world', 'make_toy_world', 'toy_classes', 'toy_splits']
