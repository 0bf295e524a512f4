# The toy InSAM-DETR that make demo trains: region and shape tokens, the shape-aware head
# with D4 symmetry
_base_ = './insam_detr/insam-detr_sam-tiny_regions-shape_shape-head-d4-top30_1xb4-12e_toy-world.py'
