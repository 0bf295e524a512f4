# The tiny InSAM-DETR of the synthetic toy world (CPU, minutes): the skeleton
# (insam_detr.py) on the tiny SAM preset, its DETR scaled down with it, and the pipelines
# that resize to the tiny SAM's input. The tiny SAM's weights come from class-agnostic
# pretraining on the toy world (python tools/misc/pretrain_toy_sam.py), the stand-in for the
# official SAM weights; set sam_checkpoint=None for a random SAM.
_base_ = './insam_detr.py'

# ---- paths and sizes: change these, not the dicts below ----
sam_preset = 'tiny'
sam_checkpoint = 'checkpoints/sam_tiny_toy.pth'
sam_channels = 96  # ViT width of the tiny preset (its prompt width: 64)
img_size = 256
embed_dims = 128
num_queries = 30
num_levels = 2  # the tiny SAM's two global-attention blocks (real presets: 4)

model = dict(
    num_queries=num_queries,
    num_feature_levels=num_levels,
    data_preprocessor=dict(pad_size_divisor=img_size),
    backbone=dict(preset=sam_preset, checkpoint=sam_checkpoint),
    neck=dict(in_channels=[sam_channels] * num_levels, num_outs=num_levels,
              out_channels=embed_dims, norm_cfg=dict(num_groups=8)),
    encoder=dict(layer_cfg=dict(self_attn_cfg=dict(embed_dims=embed_dims, num_levels=num_levels),
                                ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=256))),
    decoder=dict(num_layers=3, layer_cfg=dict(
        self_attn_cfg=dict(embed_dims=embed_dims, num_heads=4),
        cross_attn_cfg=dict(embed_dims=embed_dims, num_levels=num_levels),
        ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=512))),
    positional_encoding=dict(num_feats=embed_dims // 2),
    token_merge=dict(hidden_dims=(256, 256), out_dim=embed_dims),
    mask_head=dict(decoder=dict(preset=sam_preset, checkpoint=sam_checkpoint)),
    bbox_head=dict(embed_dims=embed_dims),
    test_cfg=dict(max_per_img=num_queries))

train_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadInContextReferences', scale=(img_size, img_size)),
    dict(type='PackInContextDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageChecked'),
    dict(type='Resize', scale=(img_size, img_size), keep_ratio=True),
    dict(type='LoadInContextReferences', scale=(img_size, img_size)),
    dict(type='PackInContextDetInputs'),
]
