# Toy linear probe of the toy SAM 3 (vision_features 64, mean-pooled, 224 px), made the way
# SAM 3 was made: python tools/misc/pretrain_toy_sam3.py. Its promptable stage leaves the
# probed encoder frozen, so checkpoints/sam3_toy_pe.pth (stage 1 alone) gives the same
# features; sam3_checkpoint = None probes the random toy preset.
_base_ = ['./_base_/toy_sam3_224.py']
work_dir = './work_dirs/linear-probe_sam3-toy_1xb16-10e_toy-cls'
sam3_checkpoint = 'checkpoints/sam3_toy.pth'

model = dict(
    backbone=dict(type='SAM3ProbeBackbone', preset='toy', checkpoint=sam3_checkpoint),
    head=dict(in_channels=64))
