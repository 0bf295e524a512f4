# SAMIC (Nagendra et al., §3): an HSNet prompter (frozen ImageNet ResNet-50, 2.57M trainable
# parameters) predicts a saliency heatmap whose peaks become SAM ViT-B point prompts; the
# pipelines resize to SAM's input and make the prompter's heatmap targets.
custom_imports = dict(imports=['mmsamantics'], allow_failed_imports=False)

# ---- paths and sizes: change these, not the dicts below ----
sam_preset = 'vit_b'
sam_checkpoint = 'checkpoints/sam_vit_b_01ec64.pth'
resnet_checkpoint = 'checkpoints/resnet50_imagenet.pth'  # torchvision/timm state dict
img_size = 1024   # SAM input
hsnet_size = 224  # prompter input and heatmap side (paper: 224)

model = dict(
    type='SAMIC',
    data_preprocessor=dict(
        type='InContextDataPreprocessor',
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_size_divisor=img_size, pad_value=0),
    prompter=dict(
        type='HSNetPrompter', input_size=hsnet_size,
        feature_extractor=dict(type='SAMICResNetFeatures', depth=50, stages=(2, 3, 4),
                               checkpoint=resnet_checkpoint),
        learner=dict(type='HSNetLearner')),
    backbone=dict(type='SAMImageEncoder', preset=sam_preset, checkpoint=sam_checkpoint),
    mask_head=dict(type='SAMBoxPromptMaskHead',
                   decoder=dict(type='SAMPromptDecoder', preset=sam_preset,
                                checkpoint=sam_checkpoint)),
    loss_heatmap=dict(type='SAMICSaliencyLoss'),
    test_cfg=dict(peak_thr=0.5, prompt_mode='per_component', max_per_img=100))

heatmaps = dict(type='GenerateSaliencyHeatmaps', size=hsnet_size, sigma=0.02, num_points=5)
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadInContextReferences', scale=(img_size, img_size), with_mask=True),
    heatmaps,
    dict(type='PackSAMICInputs'),
]
test_pipeline = [  # target masks only for the heatmap-level mIoU
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadInContextReferences', scale=(img_size, img_size), with_mask=True),
    heatmaps,
    dict(type='PackSAMICInputs'),
]
