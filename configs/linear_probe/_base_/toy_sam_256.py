# The generated toy classification folder data set (12 toy-world classes, 64 px images;
# python tools/misc/make_toy_classification.py data/toy_classification) for the tiny
# SAM / SAM 2 presets at 256 px. Paper hyper-parameters except a batch of 16 (the toy
# train split has 192 images: 12 steps per epoch).
_base_ = ['./imagenet_sam_1024.py']

data_root = 'data/toy_classification/'
img_size = 256

model = dict(data_preprocessor=dict(pad_size_divisor=img_size), head=dict(num_classes=12))
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=img_size, edge='long'),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=pipeline))
val_dataloader = dict(
    batch_size=16, num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=pipeline))
test_dataloader = val_dataloader
auto_scale_lr = dict(base_batch_size=16)
default_hooks = dict(logger=dict(interval=4), checkpoint=dict(interval=10))
