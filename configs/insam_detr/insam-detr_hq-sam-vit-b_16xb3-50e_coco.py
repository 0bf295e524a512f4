# InSAM-DETR on frozen HQ-SAM ViT-B: the authors' setup (paper §5.2 and the authors' code). The reference tokens are
# HQ-SAM's 4 mask tokens + its HQ token (5 x 256, IoU token dropped), merged by the paper's
# 2,623,744-parameter MLP; masks come from HQ-SAM's decoder. The image encoder is SAM's.
_base_ = './insam-detr_sam-vit-b_16xb3-50e_coco.py'

work_dir = './work_dirs/insam-detr_hq-sam-vit-b_16xb3-50e_coco'

# ---- paths and options: change these, not the dicts below ----
sam_preset = 'vit_b'
sam_checkpoint = 'checkpoints/sam_hq_vit_b.pth'  # one file feeds encoder and decoder
hq_token_only = False  # False = SAM mask + HQ mask logits (HQ-SAM's predictor default)

model = dict(
    # the backbone also returns the first global-attention block's output for the HQ decoder
    backbone=dict(preset=sam_preset, checkpoint=sam_checkpoint, hq_interm=True),
    mask_head=dict(decoder=dict(_delete_=True, type='HQSAMPromptDecoder', preset=sam_preset,
                                checkpoint=sam_checkpoint, hq_token_only=hq_token_only)))
