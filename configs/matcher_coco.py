# Short name: the training-free SAM ViT-H + DINOv2 ViT-L/14 matcher on COCO val2017
# (see matcher/matcher_sam-vit-h_dinov2-vit-l14_coco.py).
_base_ = './matcher/matcher_sam-vit-h_dinov2-vit-l14_coco.py'
