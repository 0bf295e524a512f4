# InSAM-DETR on HQ-SAM ViT-B with the authors' input conventions, for a checkpoint trained
# with the authors' code (miquel-espinosa/samantics, whose released configs are HQ-SAM only)
# and converted by tools/model_converters/samantics_to_mmsam.py. The data preprocessor's
# authors_conventions: BGR values (bgr_to_rgb is ignored), padding as 0-valued pixels
# normalised with the image, no padding mask, boxes normalised and clamped by the padded
# 1024 x 1024 input, their scale factor. The targets are resized by their FixShapeResize
# (which pads, and sizes some images 1023 px on the long side), and flipped after it in
# training, as their pipelines do. What still differs: docs/evaluation.md, "Deviations from
# the authors' code"; how to use it: docs/insam_detr.md.
_base_ = './insam-detr_hq-sam-vit-b_16xb3-50e_coco.py'

work_dir = './work_dirs/insam-detr_hq-sam-vit-b_16xb3-50e_coco_authors'
img_size = _base_.img_size

model = dict(data_preprocessor=dict(authors_conventions=True))

fix_shape = dict(type='FixShapeResize', width=img_size, height=img_size, keep_ratio=True)
train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotations', with_bbox=True),
    fix_shape,
    dict(type='RandomFlip', prob=0.5),  # after the padding: flipped images have it left
    dict(type='LoadInContextReferences', scale=(img_size, img_size)),
    dict(type='PackInContextDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    fix_shape,
    dict(type='LoadInContextReferences', scale=(img_size, img_size)),
    dict(type='PackInContextDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
