# ImageNet-1k folder layout at 224 px for CLIP / DINOv2: shorter side to 256 (bicubic),
# centre crop 224; ImageNet mean/std (CLIP configs override them with CLIP's).
_base_ = ['./imagenet_sam_1024.py']

img_size = 224

model = dict(data_preprocessor=dict(
    type='ClsDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    to_rgb=True, pad_size_divisor=1, _delete_=True))

# deterministic on purpose: one feature per image, so the feature cache is exact
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=img_size),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=pipeline))
val_dataloader = dict(dataset=dict(pipeline=pipeline))
test_dataloader = val_dataloader
