# Toy linear probe of a tiny random CLIP-architecture ViT (timm ViT-B/16 CLIP layout with
# width 64, 2 blocks; image embedding 32 after the projection), 224 px, CLIP mean/std.
_base_ = ['./_base_/toy_224.py']
work_dir = './work_dirs/linear-probe_clip-tiny_1xb16-10e_toy-cls'
clip_checkpoint = None

model = dict(
    data_preprocessor=dict(mean=[122.770938, 116.7460125, 104.09373615],
                           std=[68.5005327, 66.6321579, 70.32316305]),
    backbone=dict(type='TimmProbeBackbone', model_name='vit_base_patch16_clip_quickgelu_224',
                  feature='embedding', checkpoint=clip_checkpoint,
                  timm_kwargs=dict(num_classes=32, embed_dim=64, depth=2, num_heads=2)),
    head=dict(in_channels=32))
