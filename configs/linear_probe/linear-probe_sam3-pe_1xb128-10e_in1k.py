# Linear probe of SAM 3's Perception Encoder: vision_features (256) mean-pooled, 1008 px
# (SAM 3 is newer than the paper: no published number; the full preset runs on the CPU too,
# slowly).
_base_ = ['./_base_/imagenet_sam3_1008.py']
work_dir = './work_dirs/linear-probe_sam3-pe_1xb128-10e_in1k'
sam3_checkpoint = 'checkpoints/sam3.pt'

model = dict(
    backbone=dict(type='SAM3ProbeBackbone', preset='full', checkpoint=sam3_checkpoint),
    head=dict(in_channels=256))
