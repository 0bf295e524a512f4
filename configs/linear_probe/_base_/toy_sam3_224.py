# The toy classification set for the toy SAM 3 preset (toy_sam3_112.py at its 224 px input
# side): the 64 px images resized to 224 x 224, mean = std = 0.5, as sam3 preprocesses.
_base_ = ['./toy_sam3_112.py']

img_size = 224

pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=False, backend='pillow',
         interpolation='bilinear'),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=pipeline))
val_dataloader = dict(dataset=dict(pipeline=pipeline))
test_dataloader = val_dataloader
