# PerSAM on the 20 COCO-NOVEL classes (PASCAL VOC names) of val2017, the classes InSAM-DETR
# never sees in base training; splits file from make_coco_novel.py.
_base_ = ['./persam_sam-vit-h_coco.py', '../_base_/datasets/coco_novel.py']

work_dir = './work_dirs/persam_sam-vit-h_coco-novel'

test_dataloader = dict(dataset=_base_.coco_novel_test)
test_evaluator = dict(class_splits_file=_base_.coco_novel_splits_file)
