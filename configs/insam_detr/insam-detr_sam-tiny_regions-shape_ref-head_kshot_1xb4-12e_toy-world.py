# As insam-detr_sam-tiny_regions-shape_ref-head_1xb4-12e_toy-world.py, trained on k-shot
# episodes: each queried class gets 1 to 5 references, whose tokens are averaged as in
# k-shot evaluation, so 5-shot evaluation sees the averages it was trained on
# (docs/toy_semantics.md).
_base_ = './insam-detr_sam-tiny_regions-shape_ref-head_1xb4-12e_toy-world.py'

work_dir = './work_dirs/insam-detr_sam-tiny_regions-shape_ref-head_kshot_1xb4-12e_toy-world'
train_dataloader = dict(dataset=dict(train_shots=5))
