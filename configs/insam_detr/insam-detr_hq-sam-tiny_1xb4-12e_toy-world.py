# InSAM-DETR on the synthetic toy world with the tiny HQ-SAM (CPU): the authors' 5-token
# HQ-SAM wiring end to end. The weights are made the way HQ-SAM's were: the toy SAM
# (python tools/misc/pretrain_toy_sam.py), then its HQ token, MLP and feature fusion trained
# on the frozen SAM (python tools/misc/pretrain_toy_hq_sam.py). Like the released
# sam_hq_vit_*.pth, the file holds SAM's weights too, so backbone and decoder both load it.
# Set sam_checkpoint=None for a random HQ-SAM.
_base_ = './insam-detr_sam-tiny_1xb4-12e_toy-world.py'

work_dir = './work_dirs/insam-detr_hq-sam-tiny_1xb4-12e_toy-world'

sam_checkpoint = 'checkpoints/sam_hq_tiny_toy.pth'
hq_token_only = False  # False = SAM mask + HQ mask logits (HQ-SAM's predictor default)

model = dict(
    backbone=dict(checkpoint=sam_checkpoint, hq_interm=True),
    mask_head=dict(decoder=dict(_delete_=True, type='HQSAMPromptDecoder', preset='tiny',
                                checkpoint=sam_checkpoint, hq_token_only=hq_token_only)))
