# InSAM-DETR on the toy world with the reference-aware head and SAM mask tokens only
_base_ = './insam_detr/insam-detr_sam-tiny_ref-head_1xb4-12e_toy-world.py'
