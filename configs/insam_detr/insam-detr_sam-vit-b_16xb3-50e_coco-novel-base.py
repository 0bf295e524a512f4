# COCO-NOVEL: train InSAM-DETR (SAM ViT-B) on the 60 BASE classes' annotations only, evaluate
# on all 80 classes with AP reported for base and novel separately (paper: base 24.2 / 21.2,
# novel 7.1 / 6.9 box / mask AP).
_base_ = ['./insam-detr_sam-vit-b_16xb3-50e_coco.py', '../_base_/datasets/coco_novel_classes.py']

train_dataloader = dict(dataset=dict(metainfo=dict(classes={{_base_.coco_base_classes}})))
val_dataloader = dict(dataset=dict(metainfo=dict(classes={{_base_.coco_classes}})))
test_dataloader = val_dataloader
val_evaluator = dict(class_splits=dict(base={{_base_.coco_base_classes}},
                                       novel={{_base_.coco_novel_classes}}))
test_evaluator = val_evaluator
