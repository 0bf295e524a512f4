# SAMIC (Nagendra et al., §3; paper: COCO-20i 53.1 mIoU 1-shot): an HSNet prompter (frozen ImageNet
# ResNet-50, 2.57M trainable parameters) places SAM point prompts. COCO-20i fold `fold`
# (COCO 2014): train on the 60 other classes, test 1-shot on the fold's 20 classes (ids
# fold + 4k) with HSNet's 1,000 fixed episodes. Adam 1e-3, batch 4, <= 300 epochs, early
# stopping when the training loss has not improved for 10 epochs (paper).
_base_ = ['../_base_/default_runtime.py', '../_base_/datasets/coco20i_fss.py']
custom_imports = dict(imports=['mmsamantics'], allow_failed_imports=False)

# ---- paths and sizes: change these, not the dicts below ----
# explicit, so the short name configs/samic_coco.py writes here too (--work-dir wins)
work_dir = './work_dirs/samic_hsnet-r50_sam-vit-b_1xb4-300e_coco-20i'
sam_preset = 'vit_b'
sam_checkpoint = 'checkpoints/sam_vit_b_01ec64.pth'
resnet_checkpoint = 'checkpoints/resnet50_imagenet.pth'  # torchvision/timm state dict
img_size = 1024   # SAM input
hsnet_size = 224  # prompter input and heatmap side (paper: 224)
# the fold and k are dataset fields: --cfg-options test_dataloader.dataset.fold=1
# test_dataloader.dataset.shots=5 (training: train_/val_dataloader.dataset.fold too)

model = dict(
    type='SAMIC',
    data_preprocessor=dict(
        type='InContextDataPreprocessor',
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_size_divisor=img_size, pad_value=0),
    prompter=dict(
        type='HSNetPrompter', input_size=hsnet_size,
        feature_extractor=dict(type='SAMICResNetFeatures', depth=50, stages=(2, 3, 4),
                               checkpoint=resnet_checkpoint),
        learner=dict(type='HSNetLearner')),
    backbone=dict(type='SAMImageEncoder', preset=sam_preset, checkpoint=sam_checkpoint),
    mask_head=dict(type='SAMBoxPromptMaskHead',
                   decoder=dict(type='SAMPromptDecoder', preset=sam_preset,
                                checkpoint=sam_checkpoint)),
    loss_heatmap=dict(type='SAMICSaliencyLoss'),
    test_cfg=dict(peak_thr=0.5, prompt_mode='per_component', max_per_img=100))

heatmaps = dict(type='GenerateSaliencyHeatmaps', size=hsnet_size, sigma=0.02, num_points=5)
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadInContextReferences', scale=(img_size, img_size), with_mask=True),
    heatmaps,
    dict(type='PackSAMICInputs'),
]
test_pipeline = [  # target masks only for the heatmap-level mIoU
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadInContextReferences', scale=(img_size, img_size), with_mask=True),
    heatmaps,
    dict(type='PackSAMICInputs'),
]
train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=False, batch_sampler=None,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(_base_.coco20i_train, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_base_.coco20i_test, pipeline=test_pipeline))
test_dataloader = val_dataloader
# episode mIoU / FB-IoU against each episode's own ground truth (no annotation file)
val_evaluator = [dict(type='FewShotSegMetric')]
test_evaluator = val_evaluator

max_epochs = 300
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3))
custom_hooks = [dict(type='InContextEpochHook'),
                dict(type='TrainLossEarlyStoppingHook', patience=10)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2),
                     logger=dict(type='LoggerHook', interval=50))
