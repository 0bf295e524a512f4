# The generated toy classification folder data set (see toy_sam_256.py) at 224 px for the
# tiny CLIP / DINOv2 models: the 64 px images are resized to 224 (no crop).
_base_ = ['./imagenet_224.py']

data_root = 'data/toy_classification/'

model = dict(head=dict(num_classes=12))
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=224, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
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
