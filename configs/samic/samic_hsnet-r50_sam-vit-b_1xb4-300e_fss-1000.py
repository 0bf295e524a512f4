# SAMIC on FSS-1000 (paper: 89.0 mIoU 1-shot), read from its class folders (jpg/png pairs)
# and class list files (docs/samic.md): trained on the training classes, tested with one
# episode per test image (2,400 over the 240 test classes, supports drawn with seed 0).
_base_ = ['./samic_hsnet-r50_sam-vit-b_1xb4-300e_coco-20i.py',
          '../_base_/datasets/fss1000_fss.py']

work_dir = './work_dirs/samic_hsnet-r50_sam-vit-b_1xb4-300e_fss-1000'

train_dataloader = dict(dataset=dict(_base_.fss1000_train, _delete_=True,
                                     pipeline=_base_.train_pipeline))
val_dataloader = dict(dataset=dict(_base_.fss1000_test, _delete_=True,
                                   pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader
