# Toy linear probe of the tiny SAM 2 preset (vision_features 64, mean-pooled, 256 px),
# random weights.
_base_ = ['./_base_/toy_sam_256.py']
sam2_checkpoint = None

model = dict(
    backbone=dict(type='SAM2ProbeBackbone', preset='tiny', checkpoint=sam2_checkpoint),
    head=dict(in_channels=64))
