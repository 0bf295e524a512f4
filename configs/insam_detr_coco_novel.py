# Short name: COCO-NOVEL base training (see insam_detr/insam-detr_sam-vit-b_16xb3-50e_coco-novel-base.py).
_base_ = './insam_detr/insam-detr_sam-vit-b_16xb3-50e_coco-novel-base.py'
