# Toy linear probe of the tiny SAM 3 preset (vision_features 32, mean-pooled, 112 px),
# random weights.
_base_ = ['./_base_/toy_sam3_112.py']
work_dir = './work_dirs/linear-probe_sam3-tiny_1xb16-10e_toy-cls'
sam3_checkpoint = None

model = dict(
    backbone=dict(type='SAM3ProbeBackbone', preset='tiny', checkpoint=sam3_checkpoint),
    head=dict(in_channels=32))
