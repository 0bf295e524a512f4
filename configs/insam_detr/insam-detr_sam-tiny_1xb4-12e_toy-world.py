# InSAM-DETR on the synthetic toy world with the tiny SAM (CPU, minutes).
# Trained on BASE classes only; evaluated on base and novel (COCO-NOVEL protocol).
# The model (tiny SAM pretrained on the toy world): ../_base_/models/insam_detr_sam_tiny.py.
_base_ = ['../_base_/models/insam_detr_sam_tiny.py',
          '../_base_/datasets/toy_world_in_context.py']

# explicit, so the short name configs/insam_detr_toy.py writes here too (--work-dir wins)
work_dir = './work_dirs/insam-detr_sam-tiny_1xb4-12e_toy-world'
data_root = 'data/toy_world/'  # mmdet's variable (unused): the datasets use toy_root

train_dataloader = dict(batch_size=4, num_workers=0, batch_sampler=None, dataset=dict(
    _base_.toy_train, _delete_=True, max_classes_per_image=4, pipeline=_base_.train_pipeline))
val_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(
    _base_.toy_val, _delete_=True, pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=_base_.toy_val_ann, class_splits_file=_base_.toy_splits_file)
test_evaluator = val_evaluator

max_epochs = 12
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
                        milestones=[10], gamma=0.1)]
optim_wrapper = dict(optimizer=dict(lr=4e-4))
default_hooks = dict(checkpoint=dict(interval=max_epochs, max_keep_ckpts=1),
                     logger=dict(interval=20))
auto_scale_lr = dict(base_batch_size=4)
