# InSAM-DETR on the synthetic toy world with the tiny SAM (CPU, minutes).
# Trained on BASE classes only; evaluated on base and novel (COCO-NOVEL protocol).
# The tiny SAM's weights come from class-agnostic pretraining on the toy world
# (python tools/misc/pretrain_toy_sam.py), the stand-in for the official SAM weights;
# set sam_checkpoint=None for a random SAM.
_base_ = ['./insam-detr_sam-vit-b_16xb3-50e_coco.py',
          '../_base_/datasets/toy_world_in_context.py']

# explicit, so the short name configs/insam_detr_toy.py writes here too (--work-dir wins)
work_dir = './work_dirs/insam-detr_sam-tiny_1xb4-12e_toy-world'
data_root = 'data/toy_world/'  # mmdet's variable (unused): the datasets use toy_root
sam_checkpoint = 'checkpoints/sam_tiny_toy.pth'
img_size = 256
embed_dims = 128
num_queries = 30

num_levels = 2  # the tiny SAM's two global-attention blocks (real presets: 4)

model = dict(
    num_queries=num_queries,
    num_feature_levels=num_levels,
    data_preprocessor=dict(pad_size_divisor=img_size),
    backbone=dict(preset='tiny', checkpoint=sam_checkpoint),
    neck=dict(in_channels=[96] * num_levels, num_outs=num_levels, out_channels=embed_dims,
              norm_cfg=dict(num_groups=8)),
    encoder=dict(layer_cfg=dict(self_attn_cfg=dict(embed_dims=embed_dims, num_levels=num_levels),
                                ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=256))),
    decoder=dict(num_layers=3, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=embed_dims, num_heads=4),
        cross_attn_cfg=dict(embed_dims=embed_dims, num_levels=num_levels),
        ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=512))),
    positional_encoding=dict(num_feats=embed_dims // 2),
    token_merge=dict(hidden_dims=(256, 256), out_dim=embed_dims),
    mask_head=dict(decoder=dict(preset='tiny', checkpoint=sam_checkpoint)),
    bbox_head=dict(embed_dims=embed_dims),
    test_cfg=dict(max_per_img=num_queries))

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadInContextReferences', scale=(img_size, img_size)),
    dict(type='PackInContextDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadInContextReferences', scale=(img_size, img_size)),
    dict(type='PackInContextDetInputs'),
]
train_dataloader = dict(batch_size=4, num_workers=0, batch_sampler=None,
                        dataset=dict(_base_.toy_train, pipeline=train_pipeline))
val_dataloader = dict(batch_size=4, num_workers=0,
                      dataset=dict(_base_.toy_val, pipeline=test_pipeline))
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
