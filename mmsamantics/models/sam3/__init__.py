from .exemplar_canvas import (build_canvas, canvas_to_normalized, check_reference_boxes,
                              normalized_to_target)
from .sam3_checkpoint import load_sam3_checkpoint
from .sam3_presets import SAM3_PRESETS, build_sam3_image, check_bpe_path, write_tiny_bpe

__all__ = ['build_canvas', 'canvas_to_normalized', 'check_reference_boxes',
           'normalized_to_target', 'load_sam3_checkpoint', 'SAM3_PRESETS', 'build_sam3_image',
           'check_bpe_path', 'write_tiny_bpe']
