# Training-free in-context detector (paper §6, Table 4): SAM ViT-H grid proposals scored by
# DINOv2 ViT-L/14 cosine similarity to k-shot class prototypes. COCO val2017, all 80 classes.
# Paper: box AP 13.3 / AR 39.9, mask AP 11.3 / AR 34.1. No training: python tools/test.py CONFIG
_base_ = ['../_base_/default_runtime.py', '../_base_/datasets/coco_in_context.py']
custom_imports = dict(imports=['mmsamantics'], allow_failed_imports=False)

# ---- paths and sizes: change these, not the dicts below ----
# explicit, so the short name configs/matcher_coco.py writes here too (--work-dir wins)
work_dir = './work_dirs/matcher_sam-vit-h_dinov2-vit-l14_coco'
sam_preset = 'vit_h'
sam_checkpoint = 'checkpoints/sam_vit_h_4b8939.pth'
dinov2_preset = 'vit_l14'
dinov2_checkpoint = 'checkpoints/dinov2_vitl14_pretrain.pth'
img_size = 1024  # SAM input side
dinov2_size = 518  # DINOv2 input side (37 x 37 tokens)
points_per_side = 32
# evaluation references: the dataset base's 10-shot set file (or --ref-set FILE --shots K)
feature_mode = 'dense'  # 'crop': one DINOv2 pass per proposal (InsDet), for comparison

model = dict(
    type='SAMDINOv2Matcher',
    data_preprocessor=dict(
        type='InContextDataPreprocessor',
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_size_divisor=img_size, pad_value=0),
    # only the neck embedding is used: no block outputs
    backbone=dict(type='SAMImageEncoder', preset=sam_preset, checkpoint=sam_checkpoint,
                  out_indices=()),
    mask_head=dict(type='SAMBoxPromptMaskHead',
                   decoder=dict(type='SAMPromptDecoder', preset=sam_preset,
                                checkpoint=sam_checkpoint)),
    feature_extractor=dict(type='DINOv2Encoder', preset=dinov2_preset,
                           checkpoint=dinov2_checkpoint, img_size=dinov2_size),
    # SamAutomaticMaskGenerator's defaults for one crop
    proposal_generator=dict(type='SAMGridProposals', points_per_side=points_per_side,
                            points_per_batch=64, pred_iou_thresh=0.88,
                            stability_score_thresh=0.95, nms_thresh=0.7),
    feature_mode=feature_mode, crop_size=224,
    test_cfg=dict(score_thr=-1.0, nms_thr=0.5, max_per_img=100, score_mode='cosine'))

test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadInContextReferences', scale=(img_size, img_size), with_mask=True),
    dict(type='PackInContextDetInputs'),
]
test_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_base_.coco_val, pipeline=test_pipeline))
# AR@100 is COCO's AR with 100 detections per image (the paper's AR)
test_evaluator = dict(
    type='InContextCocoMetric', metric=['bbox', 'segm'],
    metric_items=['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@100'],
    ann_file=_base_.coco_val_ann)
test_cfg = dict(type='TestLoop')

# training-free: nothing to train or validate. Multi-process testing: DDP refuses a model
# without trainable parameters; the separate wrapper only wraps trainable submodules (none).
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel')
train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
val_dataloader = None
val_cfg = None
val_evaluator = None
