"""User-facing in-context inference: register references, predict on images (issue 7)."""
from .inferencer import InContextInferencer
from .insam_detr_encoder import InSAMDETRReferenceEncoder
from .matcher_encoder import SAMDINOv2MatcherReferenceEncoder
from .model_loading import (CheckpointMismatchError, build_inference_model,
                            load_detector_checkpoint)
from .outputs import coco_images, coco_results, masks_to_rle
from .reference_encoder import REFERENCE_ENCODERS, ReferenceEncoder, build_reference_encoder
from .references import Reference, prompt_to_box, read_coco_references

__all__ = ['InContextInferencer', 'ReferenceEncoder', 'REFERENCE_ENCODERS',
           'build_reference_encoder', 'InSAMDETRReferenceEncoder',
           'SAMDINOv2MatcherReferenceEncoder', 'Reference',
           'prompt_to_box', 'read_coco_references', 'CheckpointMismatchError',
           'build_inference_model', 'load_detector_checkpoint', 'coco_results',
           'coco_images', 'masks_to_rle']
