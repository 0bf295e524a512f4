"""Box-prompt study (tight vs loose SAM box prompts) and SAM pseudo-labels for WSSS."""
from .box_loosening import LOOSEN_MODES, clip_boxes, loosen_boxes, xywh_to_xyxy
from .box_prompt_study import load_coco, run_box_prompt_study, summarize_study
from .box_sources import DetectorBoxSource, GTBoxSource
from .label_maps import (IGNORE_INDEX, coco_classes, compose_label_map, gt_label_map,
                         label_png_name, load_label_png, read_classes, save_label_png,
                         voc_palette)
from .pseudo_labels import evaluate_label_dirs, generate_pseudo_labels, write_gt_labels
from .reports import miou_table, plot_miou, plot_study, study_table
from .sam_box_prompter import PROMPTER_PRESETS, SAMBoxPrompter
from .semantic_metrics import SemanticIoU, confusion_matrix, iou_from_confusion, mask_iou

__all__ = [
    'LOOSEN_MODES', 'clip_boxes', 'loosen_boxes', 'xywh_to_xyxy', 'load_coco',
    'run_box_prompt_study', 'summarize_study', 'DetectorBoxSource', 'GTBoxSource',
    'IGNORE_INDEX', 'coco_classes', 'compose_label_map', 'gt_label_map', 'label_png_name',
    'load_label_png', 'read_classes', 'save_label_png', 'voc_palette', 'evaluate_label_dirs',
    'generate_pseudo_labels', 'write_gt_labels', 'miou_table', 'plot_miou', 'plot_study',
    'study_table', 'PROMPTER_PRESETS', 'SAMBoxPrompter', 'SemanticIoU', 'confusion_matrix',
    'iou_from_confusion', 'mask_iou'
]
