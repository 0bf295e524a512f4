"""mmsamantics_toy: the synthetic data and toy-encoder pretraining behind the demo and tests.

The plugin (:mod:`mmsamantics`) never imports this package; ``tools/`` and ``tests/`` do.

- :mod:`.toy_world`: the synthetic COCO-format in-context data set of coloured shapes
  (``make_toy_world``; its class names and splits are
  :mod:`mmsamantics.datasets.toy_class_names`);
- :mod:`.toy_classification`: the same shapes, one per image, in the ImageNet folder layout
  (for the linear probes);
- :mod:`.pretraining`: label-free pretraining of the toy SAM, HQ-SAM and DINOv2 encoders
  (imports torch and the SAM parts: ``import mmsamantics_toy.pretraining``).
"""
from .toy_classification import (is_current_toy_classification, make_toy_classification,
                                 toy_classification_classes)
from .toy_world import (ToyWorldMismatchError, is_current_toy_world, make_toy_world,
                        suggest_toy_world_dir, toy_classes, toy_splits, toy_world_params)

__all__ = ['ToyWorldMismatchError', 'is_current_toy_classification', 'is_current_toy_world',
           'make_toy_classification', 'make_toy_world', 'suggest_toy_world_dir',
           'toy_classes', 'toy_classification_classes', 'toy_splits', 'toy_world_params']
