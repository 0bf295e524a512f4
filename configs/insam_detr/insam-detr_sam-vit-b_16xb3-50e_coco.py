# InSAM-DETR, SAM ViT-B, COCO 2017 (paper §5.2, Table 2: box 37.3 / mask 31.8 AP).
# 16 GPUs x 3 images, 50 epochs, lr step at 40 (authors' schedule: Deformable DETR's, from
# the model base ../_base_/models/insam_detr.py).
_base_ = ['../_base_/models/insam_detr_sam_vit_b.py', '../_base_/datasets/coco_in_context.py']

# explicit, so the short name configs/insam_detr_coco.py writes here too (--work-dir wins)
work_dir = './work_dirs/insam-detr_sam-vit-b_16xb3-50e_coco'

train_dataloader = dict(
    batch_size=3, num_workers=4,
    dataset=dict(_base_.coco_train, _delete_=True, max_classes_per_image=4,
                 pipeline=_base_.train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2,
    dataset=dict(_base_.coco_val, _delete_=True, pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=_base_.coco_val_ann)
test_evaluator = val_evaluator

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=48)
