# The toy InSAM-DETR trained from the frozen-SAM cache: SAM never runs during training.
# Build the cache first (same config, same SAM checkpoint):
#   python tools/misc/cache_embeddings.py configs/insam_detr_toy.py --out data/cache/toy_world_train
# Validation/test still run SAM on the images (masks need the SAM decoder on the embedding).
_base_ = './insam-detr_sam-tiny_1xb4-12e_toy-world.py'

work_dir = './work_dirs/insam-detr_sam-tiny_1xb4-12e_toy-world_cached'

feat_cache_dir = 'data/cache/toy_world_train'
train_pipeline = [
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='LoadCachedSAMFeatures', cache_dir=feat_cache_dir),
    # flips the cached feature map (approximates flipping the image; README)
    dict(type='RandomFlipCachedFeatures', prob=0.5),
    dict(type='LoadCachedReferenceTokens', cache_dir=feat_cache_dir),
    dict(type='PackInContextDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
