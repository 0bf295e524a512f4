# InSAM-DETR on frozen SAM ViT-B (paper §5.2, Table 2): the skeleton (insam_detr.py) on the
# four global-attention block outputs of SAM ViT-B's image encoder, with SAM ViT-B's prompt
# decoder making the masks, and the pipelines that resize to SAM's input.
_base_ = './insam_detr.py'

# ---- paths and sizes: change these, not the dicts below ----
sam_preset = 'vit_b'
sam_checkpoint = 'checkpoints/sam_vit_b_01ec64.pth'
sam_channels = 768  # ViT width of the preset (vit_b 768, vit_l 1024, vit_h 1280)
img_size = 1024

model = dict(
    data_preprocessor=dict(pad_size_divisor=img_size),
    backbone=dict(preset=sam_preset, checkpoint=sam_checkpoint),
    # the four global-attention block outputs, all at stride 16
    neck=dict(in_channels=[sam_channels] * 4),
    mask_head=dict(decoder=dict(preset=sam_preset, checkpoint=sam_checkpoint)))

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
