# SAMIC on PASCAL-5i (paper: 80.4 mIoU 1-shot), read from the VOC 2012 folders (JPEGImages,
# SegmentationClassAug, split lists: docs/samic.md). Fold f tests on VOC classes
# 5f + 1 .. 5f + 5 with HSNet's 1,000 fixed episodes (255 boundary pixels ignored) and
# trains on the 15 others: --cfg-options test_dataloader.dataset.fold=1 (training: also
# train_dataloader.dataset.fold=1 val_dataloader.dataset.fold=1).
_base_ = ['./samic_hsnet-r50_sam-vit-b_1xb4-300e_coco-20i.py',
          '../_base_/datasets/pascal5i_fss.py']

work_dir = './work_dirs/samic_hsnet-r50_sam-vit-b_1xb4-300e_pascal-5i'

train_dataloader = dict(dataset=dict(_base_.pascal5i_train, _delete_=True,
                                     pipeline=_base_.train_pipeline))
val_dataloader = dict(dataset=dict(_base_.pascal5i_test, _delete_=True,
                                   pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader
