# Toy linear probe of the tiny DINOv2 (timm ViT-S/14 DINOv2 layout at the DINOv2Encoder
# 'tiny' preset's size: width 96, 4 blocks, 3 heads; CLS token 96), 224 px. Random weights by
# default; set dinov2_checkpoint to checkpoints/dinov2_tiny_toy.pth, the self-distilled toy
# DINOv2 (python tools/misc/pretrain_toy_dinov2.py). LayerScale starts at 1.0 instead of
# DINOv2's 1e-5: with random weights and 1e-5 every block is nearly the identity and the
# CLS token is the same for every image (measured: zero spread), so nothing is probed.
_base_ = ['./_base_/toy_224.py']
work_dir = './work_dirs/linear-probe_dinov2-tiny_1xb16-10e_toy-cls'
dinov2_checkpoint = None

model = dict(
    backbone=dict(type='TimmProbeBackbone', model_name='vit_small_patch14_dinov2',
                  feature='cls', checkpoint=dinov2_checkpoint,
                  timm_kwargs=dict(img_size=224, embed_dim=96, depth=4, num_heads=3,
                                   init_values=1.0)),
    head=dict(in_channels=96))
