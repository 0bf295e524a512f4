# InSAM-DETR on the toy world with the reference-aware classification head (an option beside
# the paper's design): each decoded query is also scored against the reference embedding
# (ReferenceAwareDETRHead), and every training image also queries 2 classes it does not
# contain (negatives), so the detector learns "the reference's objects", not "objects".
_base_ = './insam-detr_sam-tiny_1xb4-12e_toy-world.py'

work_dir = './work_dirs/insam-detr_sam-tiny_ref-head_1xb4-12e_toy-world'
model = dict(bbox_head=dict(type='ReferenceAwareDETRHead'))
train_dataloader = dict(dataset=dict(neg_classes_per_image=2))
