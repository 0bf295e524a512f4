# COCO-NOVEL: train InSAM-DETR (SAM ViT-B) on the 60 BASE classes' annotations only, evaluate
# on all 80 classes with AP reported for base and novel separately (paper: base 24.2 / 21.2,
# novel 7.1 / 6.9 box / mask AP). The metric's splits file comes from make_coco_novel.py
# (see ../_base_/datasets/coco_novel.py).
_base_ = ['./insam-detr_sam-vit-b_16xb3-50e_coco.py', '../_base_/datasets/coco_novel.py']

# explicit, so the short name configs/insam_detr_coco_novel.py writes here too
work_dir = './work_dirs/insam-detr_sam-vit-b_16xb3-50e_coco-novel-base'

train_dataloader = dict(dataset=_base_.coco_novel_train)
val_dataloader = dict(dataset=_base_.coco_novel_val)
test_dataloader = val_dataloader
val_evaluator = dict(class_splits_file=_base_.coco_novel_splits_file)
test_evaluator = val_evaluator
