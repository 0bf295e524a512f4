# Linear probe of SAM ViT-L: neck embedding (256) mean-pooled, 1024 px (paper Table 1).
_base_ = ['./_base_/imagenet_sam_1024.py']
work_dir = './work_dirs/linear-probe_sam-vit-l_1xb128-10e_in1k'
sam_checkpoint = 'checkpoints/sam_vit_l_0b3195.pth'

model = dict(
    backbone=dict(type='SAMProbeBackbone', preset='vit_l', checkpoint=sam_checkpoint),
    head=dict(in_channels=256))
