# Smaller pair: SAM ViT-B proposals, DINOv2 ViT-B/14 features (about 4x faster than H + L).
_base_ = './matcher_sam-vit-h_dinov2-vit-l14_coco.py'

work_dir = './work_dirs/matcher_sam-vit-b_dinov2-vit-b14_coco'
sam_preset = 'vit_b'
sam_checkpoint = 'checkpoints/sam_vit_b_01ec64.pth'
dinov2_preset = 'vit_b14'
dinov2_checkpoint = 'checkpoints/dinov2_vitb14_pretrain.pth'
model = dict(
    backbone=dict(preset=sam_preset, checkpoint=sam_checkpoint),
    mask_head=dict(decoder=dict(preset=sam_preset, checkpoint=sam_checkpoint)),
    feature_extractor=dict(preset=dinov2_preset, checkpoint=dinov2_checkpoint))
