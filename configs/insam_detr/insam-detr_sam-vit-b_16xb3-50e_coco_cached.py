# InSAM-DETR (SAM ViT-B, COCO) trained from the frozen-SAM cache: the DETR head only.
#   torchrun --nproc_per_node 8 tools/misc/cache_embeddings.py \
#       configs/insam_detr/insam-detr_sam-vit-b_16xb3-50e_coco.py --out data/cache/coco_vit_b_train --device cuda
# The cache takes 25.2 MB per image in fp16 (2.98 TB for train2017): see README.
_base_ = './insam-detr_sam-vit-b_16xb3-50e_coco.py'

work_dir = './work_dirs/insam-detr_sam-vit-b_16xb3-50e_coco_cached'

feat_cache_dir = 'data/cache/coco_vit_b_train'
train_pipeline = [
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='LoadCachedSAMFeatures', cache_dir=feat_cache_dir),
    dict(type='RandomFlipCachedFeatures', prob=0.5),
    dict(type='LoadCachedReferenceTokens', cache_dir=feat_cache_dir),
    dict(type='PackInContextDetInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
