"""User-facing in-context inference (register references, predict on images) and the offline
builders that run a model once: feature caches and reference banks."""
from .bank_builder import make_reference_bank
from .feature_cache_builder import build_feature_cache, cache_items
from .inferencer import InContextInferencer
from .model_loading import (CheckpointMismatchError, build_dataset, build_inference_model,
                            build_model, load_detector_checkpoint)
from .samic_encoder import SAMICReferenceEncoder
from .outputs import coco_images, coco_results, masks_to_rle
from .reference_encoder import REFERENCE_ENCODERS, ReferenceEncoder, build_reference_encoder
from .references import Reference, prompt_to_box, read_coco_references

__all__ = ['InContextInferencer', 'ReferenceEncoder', 'REFERENCE_ENCODERS',
           'build_reference_encoder', 'SAMICReferenceEncoder', 'Reference',
           'prompt_to_box', 'read_coco_references', 'CheckpointMismatchError',
           'build_inference_model', 'load_detector_checkpoint', 'coco_results',
           'coco_images', 'masks_to_rle', 'build_dataset', 'build_model', 'build_feature_cache',
           'cache_items', 'make_reference_bank']
