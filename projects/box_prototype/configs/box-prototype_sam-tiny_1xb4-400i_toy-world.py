# The example in-context detector of docs/extending.md on the toy world: box prototypes of
# the toy SAM (python tools/misc/pretrain_toy_sam.py) matched with target cells through one
# learned projection. It inherits the installed package's configs the OpenMMLab way
# (mmsamantics::), so the project can live in any folder; with it on the path:
#   PYTHONPATH=projects/box_prototype mmsam train \
#       projects/box_prototype/configs/box-prototype_sam-tiny_1xb4-400i_toy-world.py
_base_ = ['mmsamantics::_base_/default_runtime.py',
          'mmsamantics::_base_/datasets/toy_world_in_context.py']

custom_imports = dict(imports=['mmsamantics', 'box_prototype'], allow_failed_imports=False)
sam_checkpoint = 'checkpoints/sam_tiny_toy.pth'
img_size = 256

model = dict(
    type='BoxPrototypeDetector',
    data_preprocessor=dict(type='InContextDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True,
                           pad_size_divisor=img_size),
    backbone=dict(type='SAMImageEncoder', preset='tiny', checkpoint=sam_checkpoint,
                  out_indices=()),
    mask_head=dict(type='SAMBoxPromptMaskHead',
                   decoder=dict(type='SAMPromptDecoder', preset='tiny',
                                checkpoint=sam_checkpoint)),
    reference_store=dict(cache_size=10_000))
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadInContextReferences', scale=(img_size, img_size)),
    dict(type='PackInContextDetInputs'),
]
test_pipeline = [train_pipeline[0], train_pipeline[2], train_pipeline[3], train_pipeline[4]]
train_dataloader = dict(batch_size=4, num_workers=0, sampler=dict(type='InfiniteSampler'),
                        dataset=dict(_base_.toy_train, pipeline=train_pipeline))
val_dataloader = dict(batch_size=4, num_workers=0, sampler=dict(type='DefaultSampler',
                                                                shuffle=False),
                      dataset=dict(_base_.toy_val, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='InContextCocoMetric', metric=['bbox', 'segm'],
                     ann_file=_base_.toy_val_ann, class_splits_file=_base_.toy_splits_file)
test_evaluator = val_evaluator
train_cfg = dict(type='IterBasedTrainLoop', max_iters=400, val_interval=400)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=400),
                     logger=dict(interval=20))
log_processor = dict(by_epoch=False)
