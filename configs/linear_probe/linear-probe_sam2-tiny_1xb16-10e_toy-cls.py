# Toy linear probe of the tiny SAM 2 preset (vision_features 64, mean-pooled, 256 px),
# random weights.
_base_ = ['./_base_/toy_sam_256.py']
work_dir = './work_dirs/linear-probe_sam2-tiny_1xb16-10e_toy-cls'
sam2_checkpoint = None

model = dict(
    backbone=dict(type='SAM2ProbeBackbone', preset='tiny', checkpoint=sam2_checkpoint),
    head=dict(in_channels=64))
