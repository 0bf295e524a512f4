# SAMIC on the synthetic toy world with the tiny SAM (CPU, minutes). Trained on BASE
# classes only; evaluated 1-shot on all classes (episode mIoU per base/novel split + AP).
# The ResNet-50 is random here (no ImageNet weights offline) and the tiny SAM comes from
# tools/misc/pretrain_toy_sam.py (set sam_checkpoint=None for a random SAM).
_base_ = './samic_hsnet-r50_sam-vit-b_1xb4-300e_coco-20i.py'

data_root = 'data/toy_world/'
sam_checkpoint = 'checkpoints/sam_tiny_toy.pth'
img_size = 256
hsnet_size = 128  # 224 in the paper; 128 keeps CPU epochs short
splits_file = data_root + 'annotations/splits.json'
toy_classes = [f'{c} {s}' for c in ('red', 'green', 'blue')
               for s in ('circle', 'square', 'triangle', 'star')]
toy_base = [c for c in toy_classes if c not in ('red star', 'green triangle', 'blue square')]

model = dict(
    data_preprocessor=dict(pad_size_divisor=img_size),
    prompter=dict(input_size=hsnet_size, feature_extractor=dict(checkpoint=None)),
    backbone=dict(preset='tiny', checkpoint=sam_checkpoint),
    mask_head=dict(decoder=dict(preset='tiny', checkpoint=sam_checkpoint)),
    # the toy SAM was pretrained with the single-mask output only: its 3 multimask
    # tokens are untrained (real SAM: keep True, SAM's advice for one point); its masks
    # carry small spurious islands that inflate the boxes (toy: bbox AP 6.2 -> 10.1)
    test_cfg=dict(multimask_output=False, min_region_area=200))

heatmaps = dict(type='GenerateSaliencyHeatmaps', size=hsnet_size)
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadInContextReferences', scale=(img_size, img_size), with_mask=True),
    heatmaps, dict(type='PackSAMICInputs')]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadInContextReferences', scale=(img_size, img_size), with_mask=True),
    heatmaps, dict(type='PackSAMICInputs')]
train_dataloader = dict(num_workers=0, batch_sampler=None, dataset=dict(
    data_root=data_root, ann_file='annotations/instances_train.json',
    data_prefix=dict(img='train/'), metainfo=dict(classes=toy_base), max_classes_per_image=3,
    ref_min_area=16 * 16, filter_cfg=dict(filter_empty_gt=True, min_size=8),
    pipeline=train_pipeline))
val_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(
    data_root=data_root, ann_file='annotations/instances_val.json',
    data_prefix=dict(img='val/'), metainfo=dict(classes=toy_classes),
    ref_ann_file='annotations/instances_train.json', ref_img_prefix='train/',
    ref_min_area=16 * 16, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='FewShotSegMetric', ann_file=data_root + 'annotations/instances_val.json',
         class_splits_file=splits_file),
    dict(type='InContextCocoMetric', metric=['bbox', 'segm'], class_splits_file=splits_file,
         ann_file=data_root + 'annotations/instances_val.json')]
test_evaluator = val_evaluator

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs, max_keep_ckpts=1),
                     logger=dict(interval=10))
