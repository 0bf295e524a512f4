# SAMIC with the toy presets (CPU, minutes): the model of samic_hsnet_r50_sam_vit_b.py on the
# tiny SAM (tools/misc/pretrain_toy_sam.py; set sam_checkpoint=None for a random SAM), a
# random ResNet-50 (the toy setting downloads nothing) and smaller inputs.
_base_ = './samic_hsnet_r50_sam_vit_b.py'

# ---- paths and sizes: change these, not the dicts below ----
sam_checkpoint = 'checkpoints/sam_tiny_toy.pth'
img_size = 256
hsnet_size = 128  # 224 in the paper; 128 keeps CPU epochs short

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
