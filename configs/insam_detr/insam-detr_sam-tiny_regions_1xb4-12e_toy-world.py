# InSAM-DETR on the toy world with the paper's conditioning (reference embedding added to the
# content queries, no negatives), each reference described by SAM's mask tokens AND its
# region tokens (the box average of the SAM encoder's two global-attention levels:
# 2 x 96 channels = 3 tokens of width 64), see docs/toy_semantics.md.
_base_ = './insam-detr_sam-tiny_1xb4-12e_toy-world.py'

work_dir = './work_dirs/insam-detr_sam-tiny_regions_1xb4-12e_toy-world'
model = dict(reference_sources=[dict(type='SAMMaskTokens'), dict(type='RegionTokens')])
