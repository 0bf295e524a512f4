# The generated toy classification folder data set (see toy_sam_256.py) at 112 px for the
# tiny SAM 3 preset, with sam3's own preprocessing (see imagenet_sam3_1008.py): the 64 px
# images resized to 112 x 112, mean = std = 0.5.
_base_ = ['./toy_sam_256.py']

img_size = 112

model = dict(data_preprocessor=dict(mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5],
                                    pad_size_divisor=1))
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False, backend='pillow',
         interpolation='bilinear'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=pipeline))
val_dataloader = dict(dataset=dict(pipeline=pipeline))
test_dataloader = val_dataloader
