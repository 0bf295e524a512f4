# InSAM-DETR on a frozen SAM 3, COCO 2017, with the paper's schedule and batch (§5.2, as
# insam-detr_sam-vit-b_16xb3-50e_coco.py, which this config changes): target features from
# SAM 3's Perception Encoder and simple-FPN neck (level 2, `vision_features`, the one SAM
# 3's own detector reads: stride 14 px), references encoded by SAM 3's own exemplar encoder (the tokens its geometry
# encoder makes of the reference box) beside the mask tokens of its SAM 1-task decoder, and
# masks from that decoder's box prompts. Input: longest side 1008, zero-padded to 1008 x
# 1008, normalised with SAM 3's mean = std = 0.5 (its processor squashes images to 1008 x
# 1008 instead; the mask head crops the padding either way, as for SAM 2). No published
# number.
_base_ = './insam-detr_sam-vit-b_16xb3-50e_coco.py'

# explicit, so a short name or a copy writes here too (--work-dir wins)
work_dir = './work_dirs/insam-detr_sam3_16xb3-50e_coco'

# ---- paths and sizes: change these, not the dicts below ----
sam3_preset = 'full'
sam3_checkpoint = 'checkpoints/sam3.pt'
sam3_width = 256  # SAM 3's d_model (neck, exemplar tokens, prompt decoder)
img_size = 1008
# detector-neck levels for the DETR (0..3 = strides 3.5, 7, 14, 28 px). Level 2 alone is
# what SAM 3's detector reads (and the exemplar encoder: it must stay in the list); one
# resolution also lets the frozen-feature cache hold it. ChannelMapper's extra stride-2
# convs add strides 28, 56, 112: 72^2 + 36^2 + 18^2 + 9^2 = 6.9k tokens at 1008 px (SAM ViT:
# 4 x 64^2 = 16.4k). (1, 2, 3) adds the stride-7 level for small objects (27.5k tokens).
out_levels = (2, )

model = dict(
    data_preprocessor=dict(pad_size_divisor=img_size, mean=[127.5] * 3, std=[127.5] * 3),
    backbone=dict(_delete_=True, type='SAM3ImageEncoder', preset=sam3_preset,
                  checkpoint=sam3_checkpoint, out_levels=out_levels, embedding='interactive'),
    neck=dict(in_channels=[sam3_width] * len(out_levels), num_outs=4),
    # SAM 3's exemplar tokens (box + CLS) after the SAM 1-task decoder's 4 mask tokens
    reference_sources=[dict(type='SAMMaskTokens'),
                       dict(type='SAM3ExemplarTokens', preset=sam3_preset,
                            checkpoint=sam3_checkpoint)],
    mask_head=dict(decoder=dict(_delete_=True, type='SAM3PromptDecoder', preset=sam3_preset,
                                checkpoint=sam3_checkpoint)))

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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
