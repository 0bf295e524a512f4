# Short name: the training-free SAM + DINOv2 matcher on the toy world
# (see matcher/matcher_sam-tiny_dinov2-tiny_toy-world.py).
_base_ = './matcher/matcher_sam-tiny_dinov2-tiny_toy-world.py'
