# Linear probing (paper §4, supp. §9): frozen encoder + one Linear layer, cross-entropy,
# AdamW lr 1e-3, batch 128, 10 epochs; fp16 AMP on GPU (tools/analysis/linear_probe.py
# switches to AmpOptimWrapper when a GPU is present; tools/train.py needs --amp).
_base_ = ['mmpretrain::_base_/default_runtime.py']

default_scope = 'mmpretrain'
custom_imports = dict(imports=['mmsamantics.probing'], allow_failed_imports=False)
# rank 0 evaluates alone: the timeout of ../../_base_/default_runtime.py
env_cfg = dict(dist_cfg=dict(timeout=7200))

model = dict(
    type='ImageClassifier',
    # backbone: set by the leaf config, a frozen *ProbeBackbone returning ((B, C),)
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=None,  # = the backbone's pooled width, set by the leaf config
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0),
        topk=(1, 5),
        # zero init: a linear probe is convex (logistic regression), and a deterministic
        # start makes training on cached features reproduce training on images exactly
        init_cfg=dict(type='Constant', layer='Linear', val=0.0)))

optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3))
param_scheduler = []  # constant learning rate
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=1)
val_cfg = dict()
test_cfg = dict()
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator
auto_scale_lr = dict(base_batch_size=128)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=100),
    # the state dict holds the frozen encoder too (SAM ViT-H: 2.5 GB): keep one
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=1))
# seed 0, and a fixed sampler seed in the dataloaders: the same image order with or
# without the feature cache
randomness = dict(seed=0, deterministic=False)
