# SAMIC on PASCAL-5i (paper: 80.4 mIoU 1-shot). Fold `fold` tests on VOC classes
# 5 * fold .. 5 * fold + 4 and trains on the 15 others. Expects PASCAL VOC 2012 (+ SBD
# augmentation) as COCO-format instance JSONs: convert once, e.g. with mmdet's
# tools/dataset_converters/pascal_voc.py (boxes) + the SBD instance masks.
_base_ = './samic_hsnet-r50_sam-vit-b_1xb4-300e_coco-20i.py'

work_dir = './work_dirs/samic_hsnet-r50_sam-vit-b_1xb4-300e_pascal-5i'
data_root = 'data/VOCdevkit/'
train_ann = 'annotations/voc12_trainaug_instances.json'
val_ann = 'annotations/voc12_val_instances.json'
fold = 0  # classes named in mmsamantics/datasets/class_splits.py ('pascal-5i-fold...')

train_dataloader = dict(dataset=dict(
    data_root=data_root, ann_file=train_ann, data_prefix=dict(img='VOC2012/JPEGImages/'),
    class_split=f'pascal-5i-fold{fold}-train'))
val_dataloader = dict(dataset=dict(
    data_root=data_root, ann_file=val_ann, data_prefix=dict(img='VOC2012/JPEGImages/'),
    class_split=f'pascal-5i-fold{fold}-test', ref_ann_file=train_ann,
    ref_img_prefix='VOC2012/JPEGImages/'))
test_dataloader = val_dataloader
val_evaluator = [dict(type='FewShotSegMetric', ann_file=data_root + val_ann),
                 dict(type='InContextCocoMetric', metric=['bbox', 'segm'],
                      ann_file=data_root + val_ann)]
test_evaluator = val_evaluator
