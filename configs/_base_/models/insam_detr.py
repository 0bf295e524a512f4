# InSAM-DETR (paper §5.2): Deformable DETR with iterative box refinement (one stage) on a
# frozen SAM image encoder; its queries carry the reference embedding (SAM's mask tokens for
# the reference box, merged by an MLP) and SAM's prompt decoder turns the boxes into masks.
# The skeleton both model bases share, at the paper's DETR sizes; which SAM (preset,
# checkpoint, ViT width, input side) and the pipelines sized to it are theirs:
# insam_detr_sam_vit_b.py (the paper's), insam_detr_sam_tiny.py (the toy world's).
# It starts from mmdet's Deformable DETR config: its model is replaced, its schedule (50
# epochs, lr step at 40: the authors') and runtime are kept.
_base_ = 'mmdet::deformable_detr/deformable-detr-refine_r50_16xb2-50e_coco.py'
custom_imports = dict(imports=['mmsamantics'], allow_failed_imports=False)
# rank 0 evaluates alone (COCOeval up to 3x): the timeout of ../default_runtime.py
env_cfg = dict(dist_cfg=dict(timeout=7200))

model = dict(
    _delete_=True,
    type='InSAMDETR',
    num_queries=300,
    num_feature_levels=4,
    with_box_refine=True,
    as_two_stage=False,
    data_preprocessor=dict(  # pad_size_divisor: the input side, set with the SAM
        type='InContextDataPreprocessor',
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_value=0),
    backbone=dict(type='SAMImageEncoder'),  # preset, checkpoint: set with the SAM
    # SAM's global-attention block outputs, all at stride 16 (in_channels: the ViT width)
    neck=dict(type='ChannelMapper', kernel_size=1, out_channels=256, act_cfg=None,
              norm_cfg=dict(type='GN', num_groups=32), num_outs=4),
    encoder=dict(num_layers=1, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=256, batch_first=True),
        ffn_cfg=dict(embed_dims=256, feedforward_channels=512, ffn_drop=0.1))),
    decoder=dict(num_layers=6, return_intermediate=True, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=256, num_heads=8, dropout=0.1, batch_first=True),
        cross_attn_cfg=dict(embed_dims=256, batch_first=True),
        ffn_cfg=dict(embed_dims=256, feedforward_channels=1024, ffn_drop=0.1)),
        post_norm_cfg=None),
    positional_encoding=dict(num_feats=128, normalize=True, offset=-0.5),
    # the paper's reference: SAM's 4 mask tokens (IoU token dropped, §5.1), merged by the
    # paper's MLP, whose input size the detector derives from the sources
    reference_sources=[dict(type='SAMMaskTokens')],
    token_merge=dict(type='TokenMergeMLP', hidden_dims=(1024, 1024), out_dim=256),
    mask_head=dict(type='SAMBoxPromptMaskHead', score_mode='box',
                   decoder=dict(type='SAMPromptDecoder')),  # preset, checkpoint: the SAM's
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

# ---- training and evaluation of every InSAM-DETR config (the data: the leaf configs) ----
# The training datasets draw new references each epoch (InContextEpochHook); persistent
# loader workers would keep the first epoch's dataset copy.
custom_hooks = [dict(type='InContextEpochHook')]
train_dataloader = dict(persistent_workers=False)
val_dataloader = dict(persistent_workers=False)
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='InContextCocoMetric', metric=['bbox', 'segm'])
test_evaluator = val_evaluator
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    'sampling_offsets': dict(lr_mult=0.1), 'reference_points': dict(lr_mult=0.1)}))
# the authors validate once, after the last epoch (no per-epoch validation)
train_cfg = dict(val_interval=_base_.train_cfg.max_epochs)
