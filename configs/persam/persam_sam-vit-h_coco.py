# PerSAM (Zhang et al., "Personalize Segment Anything Model with One Shot"), training-free:
# SAM ViT-H location prior + target-guided attention + target-semantic prompting + cascaded
# refinement, several instances per class by prior suppression. COCO val2017, all 80 classes,
# the same references, pipeline and metric as the training-free matcher (its config is the
# base: only the model differs). No training: python tools/test.py CONFIG
_base_ = '../matcher/matcher_sam-vit-h_dinov2-vit-l14_coco.py'

# ---- paths and sizes: change these, not the dicts below ----
# explicit, so the short name configs/persam_coco.py writes here too (--work-dir wins)
work_dir = './work_dirs/persam_sam-vit-h_coco'
sam_preset = 'vit_h'  # the paper's SAM
sam_checkpoint = 'checkpoints/sam_vit_h_4b8939.pth'
img_size = 1024  # SAM input side

model = dict(
    _delete_=True,
    type='PerSAM',
    data_preprocessor=dict(
        type='InContextDataPreprocessor',
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True, pad_size_divisor=img_size, pad_value=0),
    backbone=dict(type='SAMImageEncoder', preset=sam_preset, checkpoint=sam_checkpoint,
                  out_indices=()),
    mask_head=dict(type='SAMBoxPromptMaskHead',
                   decoder=dict(type='SAMPromptDecoder', preset=sam_preset,
                                checkpoint=sam_checkpoint)),
    # max_instances: prior-suppression rounds per class (PerSAM itself finds one object)
    test_cfg=dict(max_instances=10, score_thr=0.0, nms_thr=0.5, max_per_img=100))
