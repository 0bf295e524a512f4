# InSAM-DETR with the frozen SAM 2.1 Hiera-B+ encoder instead of SAM ViT-B.
# Preprocessing stays SAM's (longest side 1024, pad bottom/right); SAM 2's own predictor
# squashes images to 1024x1024 instead: the mask head crops the padding either way.
_base_ = './insam-detr_sam-vit-b_16xb3-50e_coco.py'

work_dir = './work_dirs/insam-detr_sam2-hiera-b+_16xb3-50e_coco'

# ---- paths and sizes: change these, not the dicts below ----
sam2_preset = 'hiera_b+'
sam2_checkpoint = 'checkpoints/sam2.1_hiera_base_plus.pt'
# FPN levels for the DETR (0..3 = strides 4, 8, 16, 32, all 256 channels). Strides 8/16/32
# plus ChannelMapper's extra stride-2 conv give Deformable DETR's usual 8/16/32/64 pyramid
# (21.8k tokens at 1024 px, close to SAM ViT's 4 x 64x64 = 16.4k). Stride 4 would add 65k
# tokens for little gain; stride 32 is the level SAM 2's scalp=1 drops, but its FpnNeck conv
# is trained (it feeds the stride-16 level top-down).
out_levels = (1, 2, 3)

model = dict(
    backbone=dict(_delete_=True, type='SAM2ImageEncoder', preset=sam2_preset,
                  checkpoint=sam2_checkpoint, out_levels=out_levels),
    neck=dict(in_channels=[256] * len(out_levels), num_outs=4),
    mask_head=dict(decoder=dict(_delete_=True, type='SAM2PromptDecoder', preset=sam2_preset,
                                checkpoint=sam2_checkpoint)))
