# InSAM-DETR on the toy world with the reference-aware classification head (an option beside
# the paper's design): each decoded query is also scored against the reference embedding
# (ReferenceAwareDETRHead), and every training image also queries 4 classes it does not
# contain (negatives), so the detector learns "the reference's objects", not "objects"
# (class-code upper bound, open base box AP50: 2 negatives 0.396, 4 negatives 0.453).
_base_ = './insam-detr_sam-tiny_1xb4-12e_toy-world.py'

work_dir = './work_dirs/insam-detr_sam-tiny_ref-head_1xb4-12e_toy-world'
model = dict(bbox_head=dict(type='ReferenceAwareDETRHead'))
train_dataloader = dict(dataset=dict(neg_classes_per_image=4))
