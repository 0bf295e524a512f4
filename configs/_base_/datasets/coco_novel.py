# COCO-NOVEL (Kang et al., "Few-shot Object Detection via Feature Reweighting"; paper §5.2, Table 3):
# NOVEL = the 20 PASCAL VOC classes, BASE = the other 60 (class_split 'coco-novel' /
# 'coco-base', listed in mmsamantics/datasets/class_splits.py). Training keeps BASE
# annotations only (novel objects become unlabelled background); evaluation covers all 80
# classes with AP per split. Applied on top of coco_in_context.py's datasets, e.g.
#   train_dataloader = dict(dataset=_base_.coco_novel_train)
# The metric reads the splits from the file tools/misc/make_coco_novel.py writes:
#   python tools/misc/make_coco_novel.py data/coco/annotations/instances_train2017.json \
#       --out data/coco/annotations/instances_train2017_base.json   # + annotations/splits.json
coco_novel_train = dict(class_split='coco-base')
coco_novel_val = dict(class_split='coco')
coco_novel_test = dict(class_split='coco-novel')  # the novel classes only (training-free)
coco_novel_splits_file = 'data/coco/annotations/splits.json'
