# As insam-detr_sam-tiny_regions-shape_ref-head_1xb4-12e_toy-world.py, with a head that also
# compares the outline of SAM's mask for each detection with the reference's
# (ShapeAwareDETRHead): the DETR's stride-16 features tell colours apart but barely shapes
# (docs/toy_semantics.md).
_base_ = './insam-detr_sam-tiny_regions-shape_ref-head_1xb4-12e_toy-world.py'

work_dir = './work_dirs/insam-detr_sam-tiny_regions-shape_shape-head_1xb4-12e_toy-world'
model = dict(bbox_head=dict(type='ShapeAwareDETRHead', shape_dims=64))
