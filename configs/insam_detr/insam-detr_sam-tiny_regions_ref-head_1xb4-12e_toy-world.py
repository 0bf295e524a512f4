# InSAM-DETR on the toy world, reference-aware head, and each reference described by SAM's
# mask tokens AND its region tokens: the box average of the SAM encoder's two
# global-attention levels (2 x 96 channels = 3 tokens of width 64), which keep the object's
# colour and shape that the mask tokens drop; every training image also queries up to 8
# classes it does not contain (open base box AP50: 4 negatives 0.314, 8 negatives 0.365;
# docs/toy_semantics.md). Alias: configs/insam_detr_toy_regions.py; make demo trains its
# shape-aware successor (configs/insam_detr_toy_shape.py).
_base_ = './insam-detr_sam-tiny_ref-head_1xb4-12e_toy-world.py'

work_dir = './work_dirs/insam-detr_sam-tiny_regions_ref-head_1xb4-12e_toy-world'
model = dict(reference_sources=[dict(type='SAMMaskTokens'), dict(type='RegionTokens')])
train_dataloader = dict(dataset=dict(neg_classes_per_image=8))
