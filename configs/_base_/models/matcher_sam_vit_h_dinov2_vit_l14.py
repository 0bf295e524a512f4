# Training-free in-context detector (paper §6, Table 4): SAM ViT-H grid proposals scored by
# DINOv2 ViT-L/14 cosine similarity to k-shot class prototypes, and the test pipeline that
# resizes to SAM's input (the references with their masks).
custom_imports = dict(imports=['mmsamantics'], allow_failed_imports=False)

# ---- paths and sizes: change these, not the dicts below ----
sam_preset = 'vit_h'
sam_checkpoint = 'checkpoints/sam_vit_h_4b8939.pth'
dinov2_preset = 'vit_l14'
dinov2_checkpoint = 'checkpoints/dinov2_vitl14_pretrain.pth'
img_size = 1024  # SAM input side
dinov2_size = 518  # DINOv2 input side (37 x 37 tokens)
points_per_side = 32
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
