# Short name: InSAM-DETR with SAM ViT-B on COCO 2017 (see insam_detr/insam-detr_sam-vit-b_16xb3-50e_coco.py).
_base_ = './insam_detr/insam-detr_sam-vit-b_16xb3-50e_coco.py'
