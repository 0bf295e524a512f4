# SAM 3 exemplar prompting on the 20 COCO-NOVEL classes (PASCAL VOC names) of val2017, the
# classes InSAM-DETR never sees in base training; splits file from make_coco_novel.py.
_base_ = ['./sam3-exemplar_sam3_coco.py', '../_base_/datasets/coco_novel.py']

work_dir = './work_dirs/sam3-exemplar_sam3_coco-novel'

model = dict(class_split='coco-novel')
test_dataloader = dict(dataset=dict(_base_.coco_novel_test, pipeline=_base_.test_pipeline))
test_evaluator = dict(class_splits_file=_base_.coco_novel_splits_file)
