"""SAM pseudo-labels for weakly supervised semantic segmentation (Sun et al.): boxes from GT
or a detector prompt SAM (:mod:`mmsamantics.prompt_study`'s :class:`SAMBoxPrompter`), the
masks are composed into label maps and scored by confusion-matrix mIoU."""
from .box_sources import DetectorBoxSource, GTBoxSource
from .label_maps import (IGNORE_INDEX, OVERLAP_RULES, coco_classes, compose_label_map,
                         gt_label_map, label_png_name, load_label_png, read_classes,
                         save_label_png, voc_palette)
from .pseudo_labels import evaluate_label_dirs, generate_pseudo_labels, write_gt_labels
from .reports import miou_table, plot_miou
from .semantic_metrics import SemanticIoU, confusion_matrix, iou_from_confusion

__all__ = [
    'DetectorBoxSource', 'GTBoxSource', 'IGNORE_INDEX', 'OVERLAP_RULES', 'coco_classes',
    'compose_label_map', 'gt_label_map', 'label_png_name', 'load_label_png', 'read_classes',
    'save_label_png', 'voc_palette', 'evaluate_label_dirs', 'generate_pseudo_labels',
    'write_gt_labels', 'miou_table', 'plot_miou', 'SemanticIoU', 'confusion_matrix',
    'iou_from_confusion'
]
