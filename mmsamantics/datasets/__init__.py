from .in_context_coco import InContextCocoDataset
from .toy_world import make_toy_world, toy_classes, toy_splits
from .transforms import *  # noqa: F401,F403

__all__ = ['InContextCocoDataset', 'make_toy_world', 'toy_classes', 'toy_splits']
