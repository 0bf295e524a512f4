# ImageNet-1k folder layout at 1024 px for SAM / SAM 2: longest side resized to 1024, then
# SAM's own preprocessing (RGB, SAM mean/std, zero padding bottom/right AFTER normalising).
_base_ = ['./linear_probe_runtime.py']

data_root = 'data/imagenet/'  # train/<class>/*.JPEG, val/<class>/*.JPEG
img_size = 1024

model = dict(data_preprocessor=dict(
    type='ClsDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
    to_rgb=True, pad_size_divisor=img_size, pad_value=0))

# deterministic on purpose: one feature per image, so the feature cache is exact
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=img_size, edge='long'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=128, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
    dataset=dict(type='CustomDataset', data_root=data_root,
                 data_prefix=dict(img_path='train'), pipeline=pipeline))
val_dataloader = dict(
    batch_size=128, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root=data_root,
                 data_prefix=dict(img_path='val'), pipeline=pipeline))
test_dataloader = val_dataloader
