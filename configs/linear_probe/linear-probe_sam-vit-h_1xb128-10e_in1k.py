# Linear probe of SAM ViT-H: neck embedding (256) mean-pooled, 1024 px
# (paper Table 1: 11.06 / 25.37 top-1 / top-5 with SAM; size not stated).
_base_ = ['./_base_/imagenet_sam_1024.py']
work_dir = './work_dirs/linear-probe_sam-vit-h_1xb128-10e_in1k'
sam_checkpoint = 'checkpoints/sam_vit_h_4b8939.pth'

model = dict(
    backbone=dict(type='SAMProbeBackbone', preset='vit_h', checkpoint=sam_checkpoint),
    head=dict(in_channels=256))
