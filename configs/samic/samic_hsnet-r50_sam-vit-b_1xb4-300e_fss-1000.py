# SAMIC on FSS-1000 (paper: 89.0 mIoU 1-shot): 520 training / 240 validation / 240 test
# classes of 10 images each. Expects the folder layout converted to COCO-format JSONs, one
# per split, each holding only its split's classes (one instance per image, from the
# masks): test targets in test_ann, their references in test_ref_ann (a DIFFERENT image of
# the same class, e.g. images 1-5 of each class as references, 6-10 as targets). Each
# dataset takes its classes from its annotation file (class_split='ann_file').
_base_ = './samic_hsnet-r50_sam-vit-b_1xb4-300e_coco-20i.py'

work_dir = './work_dirs/samic_hsnet-r50_sam-vit-b_1xb4-300e_fss-1000'
data_root = 'data/fss1000/'
train_ann = 'annotations/fss1000_train.json'
test_ann = 'annotations/fss1000_test_targets.json'
test_ref_ann = 'annotations/fss1000_test_references.json'

train_dataloader = dict(dataset=dict(
    data_root=data_root, ann_file=train_ann, data_prefix=dict(img='images/'),
    class_split='ann_file', ref_min_area=0,
    filter_cfg=dict(filter_empty_gt=True, min_size=0)))
val_dataloader = dict(dataset=dict(
    data_root=data_root, ann_file=test_ann, data_prefix=dict(img='images/'),
    class_split='ann_file',
    ref_ann_file=test_ref_ann, ref_img_prefix='images/', ref_min_area=0))
test_dataloader = val_dataloader
val_evaluator = [dict(type='FewShotSegMetric', ann_file=data_root + test_ann),
                 dict(type='InContextCocoMetric', metric=['bbox', 'segm'],
                      ann_file=data_root + test_ann)]
test_evaluator = val_evaluator
