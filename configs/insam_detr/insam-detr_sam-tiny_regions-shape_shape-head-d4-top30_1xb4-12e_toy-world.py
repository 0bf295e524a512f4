# What make demo trains (configs/insam_detr_toy_shape.py): the shape-aware head with D4
# symmetry of insam-detr_sam-tiny_regions-shape_shape-head-d4_1xb4-12e_toy-world.py, made
# cheaper where its cost is: SAM's decoder runs once per compared query box. 10 queries per
# (target, class) pair instead of 30 (a toy image holds 2-6 objects), and the outlines of
# only the 30 best queries of each image are compared (shape_top_k = test_cfg.max_per_img,
# the detections open mode keeps): 0.82 s per training step on 2 CPU cores instead of 2.3 s
# (docs/toy_semantics.md). The training references are encoded once before training, one
# SAM pass per image (ReferencePrefetchHook), instead of one per reference as they are
# drawn. A fixed seed makes a run repeatable on one machine.
_base_ = './insam-detr_sam-tiny_regions-shape_shape-head-d4_1xb4-12e_toy-world.py'

work_dir = './work_dirs/insam-detr_sam-tiny_regions-shape_shape-head-d4-top30_1xb4-12e_toy-world'
num_queries = 10
model = dict(num_queries=num_queries, bbox_head=dict(shape_top_k=30),
             test_cfg=dict(max_per_img=30))
custom_hooks = [dict(type='InContextEpochHook'), dict(type='ReferencePrefetchHook')]
randomness = dict(seed=0)
