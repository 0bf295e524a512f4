# The training-free matcher on the synthetic toy world (CPU, about a minute): the toy SAM
# (MAE + class-agnostic promptable pretraining, python tools/misc/pretrain_toy_sam.py) and the
# toy DINOv2 (label-free self-distillation, python tools/misc/pretrain_toy_dinov2.py; set
# dinov2_checkpoint=None for random weights). All 12 classes; base / novel AP separately.
_base_ = ['./matcher_sam-vit-h_dinov2-vit-l14_coco.py',
          '../_base_/datasets/toy_world_in_context.py']

# explicit, so the short name configs/matcher_toy.py writes here too (--work-dir wins)
work_dir = './work_dirs/matcher_sam-tiny_dinov2-tiny_toy-world'
sam_checkpoint = 'checkpoints/sam_tiny_toy.pth'
dinov2_checkpoint = 'checkpoints/dinov2_tiny_toy.pth'
img_size = 256

model = dict(
    data_preprocessor=dict(pad_size_divisor=img_size),
    backbone=dict(preset='tiny', checkpoint=sam_checkpoint),
    mask_head=dict(decoder=dict(preset='tiny', checkpoint=sam_checkpoint)),
    feature_extractor=dict(preset='tiny', checkpoint=dinov2_checkpoint, img_size=224),
    # The toy SAM was pretrained with single-mask outputs only (its 3 multimask tokens are
    # untrained) and its logits are small (max ~1-2): one mask per point and a smaller
    # stability offset than SAM's 0.95 @ 1.0. Its IoU head ranks masks but is compressed
    # into a low range (measured on the val proposals: median predicted IoU 0.52 for masks
    # that overlap an object by IoU >= 0.5, 0.42 for the rest; real SAM gives good masks
    # ~0.9), so SAM's 0.88 filter becomes 0.5 here. Its masks often carry stray specks
    # that stretch their boxes: SAM's generator's min_mask_region_area post-processing
    # removes them (the best proposal's box IoU >= 0.5 for 42 % -> 91 % of the objects).
    proposal_generator=dict(points_per_side=16, multimask_output=False,
                            pred_iou_thresh=0.5, stability_score_offset=0.25,
                            stability_score_thresh=0.4, min_mask_area=8,
                            min_mask_region_area=32),
    crop_size=112)
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadInContextReferences', scale=(img_size, img_size), with_mask=True),
    dict(type='PackInContextDetInputs'),
]
test_dataloader = dict(batch_size=4, num_workers=0,
                       dataset=dict(_base_.toy_val, pipeline=test_pipeline))
test_evaluator = dict(ann_file=_base_.toy_val_ann, class_splits_file=_base_.toy_splits_file)
