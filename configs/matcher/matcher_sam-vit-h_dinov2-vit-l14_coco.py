# Training-free in-context detector (paper §6, Table 4): SAM ViT-H grid proposals scored by
# DINOv2 ViT-L/14 cosine similarity to k-shot class prototypes. COCO val2017, all 80 classes.
# Paper: box AP 13.3 / AR 39.9, mask AP 11.3 / AR 34.1. No training: python tools/test.py CONFIG
_base_ = ['../_base_/models/matcher_sam_vit_h_dinov2_vit_l14.py',
          '../_base_/datasets/coco_in_context.py', '../_base_/schedules/training_free.py',
          '../_base_/default_runtime.py']

# explicit, so the short name configs/matcher_coco.py writes here too (--work-dir wins)
work_dir = './work_dirs/matcher_sam-vit-h_dinov2-vit-l14_coco'

# evaluation references: the dataset base's 10-shot set file (or --ref-set FILE --shots K)
test_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_base_.coco_val, pipeline=_base_.test_pipeline))
# AR@100 is COCO's AR with 100 detections per image (the paper's AR)
test_evaluator = dict(
    type='InContextCocoMetric', metric=['bbox', 'segm'],
    metric_items=['mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@100'],
    ann_file=_base_.coco_val_ann)
