# SAMIC (Nagendra et al., §3; paper: COCO-20i 53.1 mIoU 1-shot): an HSNet prompter (frozen ImageNet
# ResNet-50, 2.57M trainable parameters) places SAM point prompts. COCO-20i fold `fold`
# (COCO 2014): train on the 60 other classes, test 1-shot on the fold's 20 classes (ids
# fold + 4k) with HSNet's 1,000 fixed episodes. Adam 1e-3, batch 4, <= 300 epochs, early
# stopping when the training loss has not improved for 10 epochs (paper).
_base_ = ['../_base_/models/samic_hsnet_r50_sam_vit_b.py', '../_base_/datasets/coco20i_fss.py',
          '../_base_/schedules/samic_300e.py', '../_base_/default_runtime.py']

# explicit, so the short name configs/samic_coco.py writes here too (--work-dir wins)
work_dir = './work_dirs/samic_hsnet-r50_sam-vit-b_1xb4-300e_coco-20i'
# the fold and k are dataset fields: --cfg-options test_dataloader.dataset.fold=1
# test_dataloader.dataset.shots=5 (training: train_/val_dataloader.dataset.fold too)

train_dataloader = dict(
    batch_size=4, num_workers=4, persistent_workers=False, batch_sampler=None,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(_base_.coco20i_train, pipeline=_base_.train_pipeline))
val_dataloader = dict(
    batch_size=1, num_workers=2, persistent_workers=False, drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(_base_.coco20i_test, pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader
# episode mIoU / FB-IoU against each episode's own ground truth (no annotation file)
val_evaluator = [dict(type='FewShotSegMetric')]
test_evaluator = val_evaluator

default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=2),
                     logger=dict(type='LoggerHook', interval=50))
