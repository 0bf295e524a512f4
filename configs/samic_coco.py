# Short name: SAMIC on COCO-20i fold 0 (see samic/samic_hsnet-r50_sam-vit-b_1xb4-300e_coco-20i.py).
_base_ = './samic/samic_hsnet-r50_sam-vit-b_1xb4-300e_coco-20i.py'
