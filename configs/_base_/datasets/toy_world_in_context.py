# The synthetic toy world (python tools/misc/make_toy_world.py data/toy_world; docs/insam_detr.md):
# 12 "<colour> <shape>" classes, 9 BASE and 3 NOVEL (class_split 'toy-base' / 'toy', named
# in mmsamantics/datasets/class_splits.py from the generator's own lists; the generator
# also writes annotations/splits.json, which the metrics read). Training on BASE classes,
# evaluation on all 12 with AP per split (the COCO-NOVEL protocol, in minutes on CPU), by
# default 1-shot with seeded random references; the paper's 10-shot sets: docs/evaluation.md.
# Complete in-context datasets; model configs add their pipeline, e.g.
#   val_dataloader = dict(dataset=dict(_base_.toy_val, pipeline=test_pipeline))
toy_root = 'data/toy_world/'

toy_train = dict(
    type='InContextCocoDataset', data_root=toy_root,
    ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
    class_split='toy-base', mode='train', ref_seed=0, ref_min_area=16 * 16,
    filter_cfg=dict(filter_empty_gt=True, min_size=8))
toy_val = dict(
    type='InContextCocoDataset', data_root=toy_root,
    ann_file='annotations/instances_val.json', data_prefix=dict(img='val/'),
    class_split='toy', mode='oracle', ref_ann_file='annotations/instances_train.json',
    ref_img_prefix='train/', shots=1, ref_seed=42, ref_min_area=16 * 16, test_mode=True,
    ref_set_file=None)  # random references (seeded); model configs merged over COCO's set file
toy_val_ann = toy_root + 'annotations/instances_val.json'  # for the metrics
toy_splits_file = toy_root + 'annotations/splits.json'
