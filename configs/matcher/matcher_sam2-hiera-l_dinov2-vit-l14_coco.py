# The training-free matcher with SAM 2.1 Hiera-L making the grid proposals (point prompts,
# SAM2PromptDecoder.predict_point_masks = SAM2ImagePredictor.predict(point_coords=...)).
# Preprocessing stays SAM's (longest side 1024, pad bottom/right; SAM 2 uses the same
# mean/std); DINOv2 ViT-L/14 describes the proposals as in the SAM ViT-H config.
_base_ = './matcher_sam-vit-h_dinov2-vit-l14_coco.py'

work_dir = './work_dirs/matcher_sam2-hiera-l_dinov2-vit-l14_coco'

# ---- paths and sizes: change these, not the dicts below ----
sam2_preset = 'hiera_l'
sam2_checkpoint = 'checkpoints/sam2.1_hiera_large.pt'

model = dict(
    # only the embedding (and the decoder's high-res features) are used: no FPN levels
    backbone=dict(_delete_=True, type='SAM2ImageEncoder', preset=sam2_preset,
                  checkpoint=sam2_checkpoint, out_levels=()),
    mask_head=dict(decoder=dict(_delete_=True, type='SAM2PromptDecoder', preset=sam2_preset,
                                checkpoint=sam2_checkpoint)))
