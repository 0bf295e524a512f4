# SAM 3 exemplar prompting on the synthetic toy world with the tiny random-weight preset
# (CPU, seconds; for tests: its numbers mean nothing). All 12 classes, 1-shot, base / novel
# AP separately. bpe_path: a tokenizer vocabulary (tests write a tiny valid one).
_base_ = ['./sam3-exemplar_sam3_coco.py', '../_base_/datasets/toy_world_in_context.py']

work_dir = './work_dirs/sam3-exemplar_sam3-tiny_toy-world'
img_size = 112  # the tiny preset's input side

model = dict(preset='tiny', checkpoint=None, class_split='toy',
             data_preprocessor=dict(pad_size_divisor=img_size),
             test_cfg=dict(max_per_class=5))
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadInContextReferences', scale=(img_size, img_size)),
    dict(type='PackInContextDetInputs'),
]
# the toy references are drawn with the toy base's ref_seed, not COCO's reference-set file
test_dataloader = dict(batch_size=4, num_workers=0, dataset=dict(
    _base_.toy_val, ref_set_file=None, pipeline=test_pipeline))
test_evaluator = dict(ann_file=_base_.toy_val_ann, class_splits_file=_base_.toy_splits_file)
