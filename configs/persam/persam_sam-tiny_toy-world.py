# PerSAM on the synthetic toy world (CPU, a minute) with the toy SAM
# (python tools/misc/pretrain_toy_sam.py; set sam_checkpoint=None for random weights).
# All 12 classes, 1-shot; base / novel AP separately.
_base_ = ['./persam_sam-vit-h_coco.py', '../_base_/datasets/toy_world_in_context.py']

work_dir = './work_dirs/persam_sam-tiny_toy-world'
sam_checkpoint = 'checkpoints/sam_tiny_toy.pth'
img_size = 256

model = dict(
    data_preprocessor=dict(pad_size_divisor=img_size),
    backbone=dict(preset='tiny', checkpoint=sam_checkpoint),
    mask_head=dict(decoder=dict(preset='tiny', checkpoint=sam_checkpoint)),
    # the toy SAM was pretrained with single-mask outputs only (its 3 multimask tokens are
    # untrained): the refinements keep the single mask
    test_cfg=dict(max_instances=5, refine_multimask=False))
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadInContextReferences', scale=(img_size, img_size), with_mask=True),
    dict(type='PackInContextDetInputs'),
]
# the toy references are drawn with the toy base's ref_seed, not COCO's reference-set file
test_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(
    _base_.toy_val, ref_set_file=None, pipeline=test_pipeline))
test_evaluator = dict(ann_file=_base_.toy_val_ann, class_splits_file=_base_.toy_splits_file)
