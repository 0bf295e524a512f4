"""Box-prompt study: SAM masks from tight vs loosened GT boxes (Sama blog)."""
from .box_loosening import LOOSEN_MODES, clip_boxes, loosen_boxes, xywh_to_xyxy
from .box_prompt_study import load_coco, mask_iou, run_box_prompt_study, summarize_study
from .reports import plot_study, study_table
from .sam_box_prompter import PROMPTER_PRESETS, SAMBoxPrompter

__all__ = [
    'LOOSEN_MODES', 'clip_boxes', 'loosen_boxes', 'xywh_to_xyxy', 'load_coco', 'mask_iou',
    'run_box_prompt_study', 'summarize_study', 'plot_study', 'study_table', 'PROMPTER_PRESETS',
    'SAMBoxPrompter'
]
