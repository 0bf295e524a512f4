# InSAM-DETR on the synthetic toy world with a tiny random-weight HQ-SAM (CPU): checks the
# authors' 5-token HQ-SAM wiring end to end. No toy pretraining exists for HQ-SAM, so the
# frozen encoder and decoder keep random weights.
_base_ = './insam-detr_sam-tiny_1xb4-12e_toy-world.py'

work_dir = './work_dirs/insam-detr_hq-sam-tiny_1xb4-12e_toy-world'

sam_checkpoint = None
hq_token_only = False  # False = SAM mask + HQ mask logits (HQ-SAM's predictor default)
sam_width = 64  # prompt width of the tiny preset

model = dict(
    backbone=dict(checkpoint=sam_checkpoint, hq_interm=True),
    token_merge=dict(num_tokens=5, token_dim=sam_width),  # SAM's 4 mask tokens + HQ token
    mask_head=dict(decoder=dict(_delete_=True, type='HQSAMPromptDecoder', preset='tiny',
                                checkpoint=sam_checkpoint, hq_token_only=hq_token_only)))
