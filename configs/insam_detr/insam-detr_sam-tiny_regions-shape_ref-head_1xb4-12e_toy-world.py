# As insam-detr_sam-tiny_regions_ref-head_1xb4-12e_toy-world.py, plus a shape token per
# reference: SAM's own mask for the reference box, resampled to an 8 x 8 grid in the box's
# frame (64 = the tiny SAM's prompt width), so that references of one colour but another
# shape differ (docs/toy_semantics.md).
_base_ = './insam-detr_sam-tiny_regions_ref-head_1xb4-12e_toy-world.py'

work_dir = './work_dirs/insam-detr_sam-tiny_regions-shape_ref-head_1xb4-12e_toy-world'
model = dict(reference_sources=[dict(type='SAMMaskTokens'), dict(type='RegionTokens'),
                                dict(type='ShapeToken')])
