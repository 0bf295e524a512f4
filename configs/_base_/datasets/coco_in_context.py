# COCO 2017 as an in-context data set (InContextCocoDataset; paper §5.2). Training: each target
# queries the classes it holds, each with one reference instance from another image
# (non-crowd, area >= 32²). Evaluation ('oracle', the paper's protocol): the classes present
# are queried with the authors' 10-shot reference set of seed 42 (also 123, 33), made once by
#   python tools/misc/make_reference_sets.py data/coco/annotations/instances_train2017.json \
#       --out-dir data/coco/references
# A test run without the file stops and names that command. Random references (drawn from
# ref_ann_file with ref_seed, not the paper's) only on request:
#   --cfg-options test_dataloader.dataset.ref_set_file=None
# Classes: all 80 (the dataset's METAINFO); subsets are named with `class_split`
# (mmsamantics/datasets/class_splits.py), never listed here.
# Model configs add their pipeline and options, e.g.
#   train_dataloader = dict(dataset=dict(_base_.coco_train, _delete_=True,
#                                        pipeline=train_pipeline))
# The names avoid mmdet's (data_root, train_dataloader...), so this file can sit next to an
# mmdet model config in `_base_`.
coco_root = 'data/coco/'
ref_seed = 42  # evaluation reference set (authors' seeds: 42, 123, 33)
ref_set_file = f'references/refs_seed{ref_seed}.json'  # under coco_root
shots = 10  # the authors evaluate 10-shot; k-shot = the first k of the file

coco_train = dict(
    type='InContextCocoDataset', data_root=coco_root,
    ann_file='annotations/instances_train2017.json', data_prefix=dict(img='train2017/'),
    mode='train', ref_seed=0, ref_min_area=32 * 32,
    filter_cfg=dict(filter_empty_gt=True, min_size=32))
coco_val = dict(
    type='InContextCocoDataset', data_root=coco_root,
    ann_file='annotations/instances_val2017.json', data_prefix=dict(img='val2017/'),
    mode='oracle', ref_ann_file='annotations/instances_train2017.json',
    ref_img_prefix='train2017/', ref_set_file=ref_set_file, shots=shots, ref_seed=ref_seed,
    ref_min_area=32 * 32, test_mode=True)
coco_val_ann = coco_root + 'annotations/instances_val2017.json'  # for the metrics
