# As insam-detr_sam-tiny_regions-shape_shape-head_1xb4-12e_toy-world.py, with the outline
# comparison averaged over the 8 rotations by 90 degrees and mirrorings of the shape grid
# (shape_symmetry='d4'): the toy world's shapes lie at any angle (docs/toy_semantics.md).
_base_ = './insam-detr_sam-tiny_regions-shape_shape-head_1xb4-12e_toy-world.py'

work_dir = './work_dirs/insam-detr_sam-tiny_regions-shape_shape-head-d4_1xb4-12e_toy-world'
model = dict(bbox_head=dict(shape_symmetry='d4'))
