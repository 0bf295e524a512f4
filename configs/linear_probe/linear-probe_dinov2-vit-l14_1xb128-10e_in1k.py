# Linear probe of DINOv2 ViT-L/14: the final-norm CLS token (1024), 224 px (position
# embedding resampled from 518 by timm) (paper Table 1: 77.43 / 93.78 top-1 / top-5 with
# DINOv2; size not stated).
_base_ = ['./_base_/imagenet_224.py']
work_dir = './work_dirs/linear-probe_dinov2-vit-l14_1xb128-10e_in1k'
dinov2_checkpoint = 'checkpoints/dinov2_vitl14_pretrain.pth'

model = dict(
    backbone=dict(type='TimmProbeBackbone', model_name='vit_large_patch14_dinov2',
                  feature='cls', checkpoint=dinov2_checkpoint,
                  timm_kwargs=dict(img_size=224)),
    head=dict(in_channels=1024))
