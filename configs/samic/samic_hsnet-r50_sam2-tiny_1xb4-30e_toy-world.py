# SAMIC on the toy world with a tiny random-weight SAM 2 segmenting at the peaks (no toy
# pretraining exists for SAM 2): the SAM 2 wiring on CPU; the prompter trains as with SAM.
_base_ = './samic_hsnet-r50_sam-tiny_1xb4-30e_toy-world.py'

work_dir = './work_dirs/samic_hsnet-r50_sam2-tiny_1xb4-30e_toy-world'
sam2_checkpoint = None

model = dict(
    backbone=dict(_delete_=True, type='SAM2ImageEncoder', preset='tiny',
                  checkpoint=sam2_checkpoint, out_levels=()),
    mask_head=dict(decoder=dict(_delete_=True, type='SAM2PromptDecoder', preset='tiny',
                                checkpoint=sam2_checkpoint)))
