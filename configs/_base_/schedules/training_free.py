# Training-free models (the matcher, PerSAM, SAM 3 exemplar prompting): the test loop only,
# nothing to train or validate (python tools/test.py CONFIG, no checkpoint).
# Multi-process testing: DDP refuses a model without trainable parameters; the separate
# wrapper only wraps trainable submodules (none).
model_wrapper_cfg = dict(type='MMSeparateDistributedDataParallel')
train_dataloader = None
train_cfg = None
optim_wrapper = None
param_scheduler = None
val_dataloader = None
val_cfg = None
val_evaluator = None
test_cfg = dict(type='TestLoop')
