# Toy linear probe of the tiny SAM preset (neck 64, mean-pooled, 256 px), random weights
# by default; checkpoints/sam_tiny_toy.pth (tools/misc/pretrain_toy_sam.py) also fits.
_base_ = ['./_base_/toy_sam_256.py']
work_dir = './work_dirs/linear-probe_sam-tiny_1xb16-10e_toy-cls'
sam_checkpoint = None

model = dict(
    backbone=dict(type='SAMProbeBackbone', preset='tiny', checkpoint=sam_checkpoint),
    head=dict(in_channels=64))
