# SAMIC on the synthetic toy world with the tiny SAM (CPU, minutes). Trained on BASE
# classes only; evaluated 1-shot on all classes (episode mIoU per base/novel split + AP).
# The ResNet-50 is random here (the toy setting downloads nothing) and the tiny SAM comes from
# tools/misc/pretrain_toy_sam.py (set sam_checkpoint=None for a random SAM).
_base_ = ['./samic_hsnet-r50_sam-vit-b_1xb4-300e_coco-20i.py',
          '../_base_/datasets/toy_world_in_context.py']

# explicit, so the short name configs/samic_toy.py writes here too (--work-dir wins)
work_dir = './work_dirs/samic_hsnet-r50_sam-tiny_1xb4-30e_toy-world'
sam_checkpoint = 'checkpoints/sam_tiny_toy.pth'
img_size = 256
hsnet_size = 128  # 224 in the paper; 128 keeps CPU epochs short
# its own world (docs/samic.md: 120 train / 24 val images); data/toy_world is the demo's
samic_root = 'data/toy_world_samic/'

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
# _delete_: the COCO-format toy world, not the base's COCO-20i episode datasets
train_dataloader = dict(num_workers=0, batch_sampler=None, dataset=dict(
    _base_.toy_train, _delete_=True, data_root=samic_root, max_classes_per_image=3,
    pipeline=train_pipeline))
val_dataloader = dict(batch_size=4, num_workers=0,
                      dataset=dict(_base_.toy_val, _delete_=True, data_root=samic_root,
                                   pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='FewShotSegMetric', ann_file=samic_root + 'annotations/instances_val.json',
         class_splits_file=samic_root + 'annotations/splits.json'),
    dict(type='InContextCocoMetric', metric=['bbox', 'segm'],
         class_splits_file=samic_root + 'annotations/splits.json',
         ann_file=samic_root + 'annotations/instances_val.json')]
test_evaluator = val_evaluator

max_epochs = 30
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
default_hooks = dict(checkpoint=dict(interval=max_epochs, max_keep_ckpts=1),
                     logger=dict(interval=10))
