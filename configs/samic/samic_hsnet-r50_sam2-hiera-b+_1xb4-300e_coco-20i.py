# SAMIC with SAM 2.1 Hiera-B+ segmenting at the prompter's peaks (point prompts,
# SAM2PromptDecoder.predict_point_masks = SAM2ImagePredictor.predict(point_coords=...)).
# The prompter (HSNet on ResNet-50) is unchanged: a SAMIC checkpoint trained with SAM loads
# here too (SAM is used at test time only).
_base_ = './samic_hsnet-r50_sam-vit-b_1xb4-300e_coco-20i.py'

work_dir = './work_dirs/samic_hsnet-r50_sam2-hiera-b+_1xb4-300e_coco-20i'

# ---- paths and sizes: change these, not the dicts below ----
sam2_preset = 'hiera_b+'
sam2_checkpoint = 'checkpoints/sam2.1_hiera_base_plus.pt'

model = dict(
    backbone=dict(_delete_=True, type='SAM2ImageEncoder', preset=sam2_preset,
                  checkpoint=sam2_checkpoint, out_levels=()),
    mask_head=dict(decoder=dict(_delete_=True, type='SAM2PromptDecoder', preset=sam2_preset,
                                checkpoint=sam2_checkpoint)))
