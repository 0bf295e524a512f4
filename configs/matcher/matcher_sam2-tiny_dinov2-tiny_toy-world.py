# The training-free matcher on the toy world with a tiny random-weight SAM 2 (no toy
# pretraining exists for SAM 2) and the toy DINOv2: the SAM 2 wiring on CPU, not a result.
_base_ = './matcher_sam-tiny_dinov2-tiny_toy-world.py'

work_dir = './work_dirs/matcher_sam2-tiny_dinov2-tiny_toy-world'
sam2_checkpoint = None

model = dict(
    backbone=dict(_delete_=True, type='SAM2ImageEncoder', preset='tiny',
                  checkpoint=sam2_checkpoint, out_levels=()),
    mask_head=dict(decoder=dict(_delete_=True, type='SAM2PromptDecoder', preset='tiny',
                                checkpoint=sam2_checkpoint)),
    # the toy SAM's calibrated filters do not apply to a random SAM 2: keep every mask
    proposal_generator=dict(pred_iou_thresh=0.25, min_mask_region_area=0))
