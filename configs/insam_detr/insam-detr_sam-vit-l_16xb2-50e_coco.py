# InSAM-DETR, SAM ViT-L, COCO 2017 (paper: box 43.5 / mask 37.5 AP); batch 28 in the paper.
_base_ = './insam-detr_sam-vit-b_16xb3-50e_coco.py'

work_dir = './work_dirs/insam-detr_sam-vit-l_16xb2-50e_coco'

sam_preset = 'vit_l'
sam_checkpoint = 'checkpoints/sam_vit_l_0b3195.pth'
model = dict(
    backbone=dict(preset=sam_preset, checkpoint=sam_checkpoint),
    neck=dict(in_channels=[1024] * 4),
    mask_head=dict(decoder=dict(preset=sam_preset, checkpoint=sam_checkpoint)))
train_dataloader = dict(batch_size=2)
auto_scale_lr = dict(base_batch_size=28)
