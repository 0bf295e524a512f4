# Linear probe of SAM 2.1 Hiera-B+: vision_features (256) mean-pooled, 1024 px
# (paper Table 1: 23.16 / 44.44 top-1 / top-5 with SAM 2; size not stated).
_base_ = ['./_base_/imagenet_sam_1024.py']
work_dir = './work_dirs/linear-probe_sam2-hiera-b+_1xb128-10e_in1k'
sam2_checkpoint = 'checkpoints/sam2.1_hiera_base_plus.pt'

model = dict(
    backbone=dict(type='SAM2ProbeBackbone', preset='hiera_b+', checkpoint=sam2_checkpoint),
    head=dict(in_channels=256))
