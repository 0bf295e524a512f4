# Linear probe of OpenAI CLIP ViT-B/16: the image embedding (512, after the projection),
# 224 px, CLIP mean/std (paper Table 1: 73.92 / 92.89 top-1 / top-5; size not stated).
# Weights: model.safetensors of
#   https://huggingface.co/timm/vit_base_patch16_clip_quickgelu_224.openai
_base_ = ['./_base_/imagenet_224.py']
work_dir = './work_dirs/linear-probe_clip-vit-b16_1xb128-10e_in1k'
clip_checkpoint = 'checkpoints/vit_base_patch16_clip_quickgelu_224.openai.safetensors'

model = dict(
    data_preprocessor=dict(mean=[122.770938, 116.7460125, 104.09373615],
                           std=[68.5005327, 66.6321579, 70.32316305]),
    backbone=dict(type='TimmProbeBackbone', model_name='vit_base_patch16_clip_quickgelu_224',
                  feature='embedding', checkpoint=clip_checkpoint,
                  timm_kwargs=dict(num_classes=512)),
    head=dict(in_channels=512))
