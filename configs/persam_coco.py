# Short name: PerSAM on COCO (see persam/persam_sam-vit-h_coco.py).
_base_ = './persam/persam_sam-vit-h_coco.py'
