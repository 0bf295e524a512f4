from .exemplar_bank import decode_exemplar_crop, encode_exemplar_crops
from .exemplar_canvas import (build_canvas, canvas_to_normalized, check_reference_boxes,
                              normalized_to_target, paste_crops, reference_crop)
from .sam3_checkpoint import load_sam3_checkpoint, sam3_detector_state, sam3_tracker_state
from .sam3_presets import (SAM3_PRESETS, build_sam3_geometry_encoder, build_sam3_image,
                           build_sam3_sam_heads, build_sam3_vision_backbone, check_bpe_path,
                           check_sam3_preset, sam3_position_encoding, write_tiny_bpe)

__all__ = ['decode_exemplar_crop', 'encode_exemplar_crops', 'build_canvas',
           'canvas_to_normalized', 'check_reference_boxes', 'normalized_to_target',
           'paste_crops', 'reference_crop', 'load_sam3_checkpoint', 'SAM3_PRESETS',
           'build_sam3_image', 'build_sam3_vision_backbone', 'check_bpe_path', 'write_tiny_bpe',
           'sam3_detector_state', 'sam3_tracker_state', 'build_sam3_geometry_encoder',
           'build_sam3_sam_heads', 'check_sam3_preset', 'sam3_position_encoding']
