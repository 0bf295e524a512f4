# Short name: InSAM-DETR on the toy world (see insam_detr/insam-detr_sam-tiny_1xb4-12e_toy-world.py).
_base_ = './insam_detr/insam-detr_sam-tiny_1xb4-12e_toy-world.py'
