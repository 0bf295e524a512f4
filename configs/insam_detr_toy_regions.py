# InSAM-DETR on the toy world with region tokens and the reference-aware head (what make demo trains)
_base_ = './insam_detr/insam-detr_sam-tiny_regions_ref-head_1xb4-12e_toy-world.py'
