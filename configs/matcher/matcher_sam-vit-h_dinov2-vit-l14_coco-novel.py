# The training-free matcher on the 20 COCO-NOVEL classes (PASCAL VOC names) of val2017:
# the classes InSAM-DETR never sees in base training (insam-detr ..._coco-novel-base.py).
# The metric's splits file comes from make_coco_novel.py (../_base_/datasets/coco_novel.py).
_base_ = ['./matcher_sam-vit-h_dinov2-vit-l14_coco.py', '../_base_/datasets/coco_novel.py']

work_dir = './work_dirs/matcher_sam-vit-h_dinov2-vit-l14_coco-novel'

test_dataloader = dict(dataset=_base_.coco_novel_test)
test_evaluator = dict(class_splits_file=_base_.coco_novel_splits_file)
