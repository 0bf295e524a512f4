# COCO-NOVEL with SAM 3: train on the 60 BASE classes' annotations only, evaluate on all 80
# with AP for base and novel separately (the paper's protocol, §5.2; SAM ViT-B: novel 7.1 /
# 6.9 box / mask AP). The splits file comes from make_coco_novel.py.
_base_ = ['./insam-detr_sam3_16xb3-50e_coco.py', '../_base_/datasets/coco_novel.py']

work_dir = './work_dirs/insam-detr_sam3_16xb3-50e_coco-novel-base'

train_dataloader = dict(dataset=_base_.coco_novel_train)
val_dataloader = dict(dataset=_base_.coco_novel_val)
test_dataloader = val_dataloader
val_evaluator = dict(class_splits_file=_base_.coco_novel_splits_file)
test_evaluator = val_evaluator
