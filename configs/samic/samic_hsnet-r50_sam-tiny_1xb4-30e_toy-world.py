# SAMIC on the synthetic toy world with the tiny SAM (CPU, minutes). Trained on BASE
# classes only; evaluated 1-shot on all classes (episode mIoU per base/novel split + AP).
# The model (tiny SAM, random ResNet-50): ../_base_/models/samic_hsnet_r50_sam_tiny.py.
_base_ = ['../_base_/models/samic_hsnet_r50_sam_tiny.py',
          '../_base_/datasets/toy_world_in_context.py', '../_base_/schedules/samic_300e.py',
          '../_base_/default_runtime.py']

# explicit, so the short name configs/samic_toy.py writes here too (--work-dir wins)
work_dir = './work_dirs/samic_hsnet-r50_sam-tiny_1xb4-30e_toy-world'
# its own world (docs/samic.md: 120 train / 24 val images); data/toy_world is the demo's
samic_root = 'data/toy_world_samic/'

train_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False, batch_sampler=None,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(_base_.toy_train, data_root=samic_root, max_classes_per_image=3,
                 pipeline=_base_.train_pipeline))
val_dataloader = dict(
    batch_size=4, num_workers=0, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_base_.toy_val, data_root=samic_root, pipeline=_base_.test_pipeline))
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
