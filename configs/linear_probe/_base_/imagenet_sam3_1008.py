# ImageNet-1k folder layout at 1008 px for SAM 3, with sam3's own preprocessing (its
# Sam3Processor): the image resized to 1008 x 1008 (aspect not kept; bilinear, antialiased),
# then mean = std = 0.5 on the [0, 1] scale (127.5 on 0..255). No padding.
_base_ = ['./imagenet_sam_1024.py']

img_size = 1008

model = dict(data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5],
                                    pad_size_divisor=1))

# deterministic on purpose: one feature per image, so the feature cache is exact
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False, backend='pillow',
         interpolation='bilinear'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=pipeline))
val_dataloader = dict(dataset=dict(pipeline=pipeline))
test_dataloader = val_dataloader
