# InSAM-DETR on the synthetic toy world with a tiny random-weight SAM 2 (Hiera) encoder (CPU).
# No toy pretraining exists for SAM 2: the frozen encoder and decoder keep random weights.
_base_ = './insam-detr_sam-tiny_1xb4-12e_toy-world.py'

work_dir = './work_dirs/insam-detr_sam2-tiny_1xb4-12e_toy-world'

sam2_checkpoint = None
out_levels = (1, 2, 3)  # FPN strides 8, 16, 32: 32x32, 16x16, 8x8 at 256 px
num_levels = len(out_levels)
sam2_width = 64  # d_model of the tiny SAM 2 preset

model = dict(
    num_feature_levels=num_levels,
    backbone=dict(_delete_=True, type='SAM2ImageEncoder', preset='tiny',
                  checkpoint=sam2_checkpoint, out_levels=out_levels),
    neck=dict(in_channels=[sam2_width] * num_levels, num_outs=num_levels),
    encoder=dict(layer_cfg=dict(self_attn_cfg=dict(num_levels=num_levels))),
    decoder=dict(layer_cfg=dict(cross_attn_cfg=dict(num_levels=num_levels))),
    token_merge=dict(token_dim=sam2_width),  # 4 mask tokens, as SAM's (the base's num_tokens)
    mask_head=dict(decoder=dict(_delete_=True, type='SAM2PromptDecoder', preset='tiny',
                                checkpoint=sam2_checkpoint)))
