# InSAM-DETR, SAM ViT-B, COCO 2017 (paper §5.2, Table 2: box 37.3 / mask 31.8 AP).
# 16 GPUs x 3 images, 50 epochs, lr step at 40 (authors' schedule).
_base_ = ['mmdet::deformable_detr/deformable-detr-refine_r50_16xb2-50e_coco.py',
          '../_base_/datasets/coco_in_context.py']
custom_imports = dict(imports=['mmsamantics'], allow_failed_imports=False)
# rank 0 evaluates alone (COCOeval up to 3x): the timeout of ../_base_/default_runtime.py
env_cfg = dict(dist_cfg=dict(timeout=7200))

# ---- paths and sizes: change these, not the dicts below ----
# explicit, so the short name configs/insam_detr_coco.py writes here too (--work-dir wins)
work_dir = './work_dirs/insam-detr_sam-vit-b_16xb3-50e_coco'
sam_preset = 'vit_b'
sam_checkpoint = 'checkpoints/sam_vit_b_01ec64.pth'
sam_channels = 768  # ViT width of the preset (vit_b 768, vit_l 1024, vit_h 1280)
img_size = 1024

model = dict(
    _delete_=True,
    type='InSAMDETR',
    num_queries=300,
    num_feature_levels=4,
    with_box_refine=True,
    as_two_stage=False,
    data_preprocessor=dict(
        type='InContextDataPreprocessor',
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_size_divisor=img_size, pad_value=0),
    backbone=dict(type='SAMImageEncoder', preset=sam_preset, checkpoint=sam_checkpoint),
    # the four global-attention block outputs, all at stride 16
    neck=dict(type='ChannelMapper', in_channels=[sam_channels] * 4, kernel_size=1,
              out_channels=256, act_cfg=None, norm_cfg=dict(type='GN', num_groups=32),
              num_outs=4),
    encoder=dict(num_layers=1, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=256, batch_first=True),
        ffn_cfg=dict(embed_dims=256, feedforward_channels=512, ffn_drop=0.1))),
    decoder=dict(num_layers=6, return_intermediate=True, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.1, batch_first=True),
        cross_attn_cfg=dict(embed_dims=256, batch_first=True),
        ffn_cfg=dict(embed_dims=256, feedforward_channels=1024, ffn_drop=0.1)),
        post_norm_cfg=None),
    positional_encoding=dict(num_feats=128, normalize=True, offset=-0.5),
    # the paper's reference: SAM's 4 mask tokens (§5.1); the MLP's input size is derived
    reference_sources=[dict(type='SAMMaskTokens')],
    token_merge=dict(type='TokenMergeMLP', hidden_dims=(1024, 1024), out_dim=256),
    mask_head=dict(type='SAMBoxPromptMaskHead', score_mode='box',
                   decoder=dict(type='SAMPromptDecoder', preset=sam_preset,
                                checkpoint=sam_checkpoint)),
    kshot_average='tokens',
    bbox_head=dict(
        type='InContextDETRHead', num_classes=1, sync_cls_avg_factor=True,
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25,
                      loss_weight=2.0),
        loss_bbox=dict(type='L1Loss', loss_weight=5.0),
        loss_iou=dict(type='GIoULoss', loss_weight=2.0)),
    train_cfg=dict(assigner=dict(type='HungarianAssigner', match_costs=[
        dict(type='FocalLossCost', weight=2.0),
        dict(type='BBoxL1Cost', weight=5.0, box_format='xywh'),
        dict(type='IoUCost', iou_mode='giou', weight=2.0)])),
    # oracle mode keeps max_per_pair per (image, class) pair, as the authors; open mode
    # keeps max_per_img per image after merging the classes
    test_cfg=dict(max_per_pair=100, max_per_img=100))

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),  # padding stays bottom/right: it is added later
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
train_dataloader = dict(
    batch_size=3, num_workers=4, persistent_workers=False,
    dataset=dict(_base_.coco_train, _delete_=True, max_classes_per_image=4,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=False,
    dataset=dict(_base_.coco_val, _delete_=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='InContextCocoMetric', metric=['bbox', 'segm'],
                     ann_file=_base_.coco_val_ann)
test_evaluator = val_evaluator

optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'sampling_offsets': dict(lr_mult=0.1), 'reference_points': dict(lr_mult=0.1)}))
# the authors validate once, after the last epoch (no per-epoch validation)
train_cfg = dict(val_interval=_base_.train_cfg.max_epochs)
custom_hooks = [dict(type='InContextEpochHook')]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=48)
