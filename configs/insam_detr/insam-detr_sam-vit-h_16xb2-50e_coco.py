# InSAM-DETR, SAM ViT-H, COCO 2017; batch 28 in the paper.
_base_ = './insam-detr_sam-vit-b_16xb3-50e_coco.py'

work_dir = './work_dirs/insam-detr_sam-vit-h_16xb2-50e_coco'

sam_preset = 'vit_h'
sam_checkpoint = 'checkpoints/sam_vit_h_4b8939.pth'
model = dict(
    backbone=dict(preset=sam_preset, checkpoint=sam_checkpoint),
    neck=dict(in_channels=[1280] * 4),
    mask_head=dict(decoder=dict(preset=sam_preset, checkpoint=sam_checkpoint)))
train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(base_batch_size=28)
