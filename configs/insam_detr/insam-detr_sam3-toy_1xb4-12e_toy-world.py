# InSAM-DETR on the synthetic toy world with the toy SAM 3 (CPU, minutes): the paper's
# design (insam-detr_sam-tiny_1xb4-12e_toy-world.py) with SAM 3's parts: target features from
# its Perception Encoder's neck, references encoded by its exemplar encoder beside its SAM
# 1-task decoder's mask tokens, masks from that decoder. The toy SAM 3 is made like SAM 3:
# contrastive image-caption pretraining, then class-agnostic promptable segmentation
# (python tools/misc/pretrain_toy_sam3.py); set sam3_checkpoint=None for random weights.
_base_ = './insam-detr_sam-tiny_1xb4-12e_toy-world.py'

work_dir = './work_dirs/insam-detr_sam3-toy_1xb4-12e_toy-world'

# ---- paths and sizes: change these, not the dicts below ----
sam3_preset = 'toy'
sam3_checkpoint = 'checkpoints/sam3_toy.pth'
sam3_width = 64  # d_model of the toy preset
img_size = 224  # 16 x 16 patches of 14 px
# the detector-neck level SAM 3's detector reads (vision_features, 16 x 16; one resolution,
# so the frozen-feature cache can hold it); ChannelMapper adds an 8 x 8 level: two levels,
# as the toy SAM's
out_levels = (2, )
num_levels = 2

model = dict(
    num_feature_levels=num_levels,
    data_preprocessor=dict(pad_size_divisor=img_size, mean=[127.5] * 3, std=[127.5] * 3),
    backbone=dict(_delete_=True, type='SAM3ImageEncoder', preset=sam3_preset,
                  checkpoint=sam3_checkpoint, out_levels=out_levels, embedding='interactive'),
    neck=dict(in_channels=[sam3_width] * len(out_levels), num_outs=num_levels),
    encoder=dict(layer_cfg=dict(self_attn_cfg=dict(num_levels=num_levels))),
    decoder=dict(layer_cfg=dict(cross_attn_cfg=dict(num_levels=num_levels))),
    reference_sources=[dict(type='SAMMaskTokens'),
                       dict(type='SAM3ExemplarTokens', preset=sam3_preset,
                            checkpoint=sam3_checkpoint)],
    mask_head=dict(decoder=dict(_delete_=True, type='SAM3PromptDecoder', preset=sam3_preset,
                                checkpoint=sam3_checkpoint)))

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
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
