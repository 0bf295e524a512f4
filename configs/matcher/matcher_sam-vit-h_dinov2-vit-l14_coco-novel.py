# The training-free matcher on the 20 COCO-NOVEL classes (PASCAL VOC names) of val2017:
# the classes InSAM-DETR never sees in base training (insam-detr ..._coco-novel-base.py).
_base_ = ['./matcher_sam-vit-h_dinov2-vit-l14_coco.py',
          '../_base_/datasets/coco_novel_classes.py']

test_dataloader = dict(dataset=dict(metainfo=dict(classes={{_base_.coco_novel_classes}})))
test_evaluator = dict(class_splits=dict(novel={{_base_.coco_novel_classes}}))
