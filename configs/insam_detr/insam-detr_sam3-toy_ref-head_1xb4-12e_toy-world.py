# InSAM-DETR on the toy SAM 3 with the reference-aware classification head and 4 negative
# classes per training image (as insam-detr_sam-tiny_ref-head_1xb4-12e_toy-world.py for the
# toy SAM): the design under which a detector can use what its reference tokens carry.
_base_ = './insam-detr_sam3-toy_1xb4-12e_toy-world.py'

work_dir = './work_dirs/insam-detr_sam3-toy_ref-head_1xb4-12e_toy-world'
model = dict(bbox_head=dict(type='ReferenceAwareDETRHead'))
train_dataloader = dict(dataset=dict(neg_classes_per_image=4))
