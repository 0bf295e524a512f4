# SAMIC's training (Nagendra et al.): Adam 1e-3, at most 300 epochs, early stopping when the
# training loss has not improved for 10 epochs; one validation, after the last epoch.
# The training datasets draw new references each epoch (InContextEpochHook).
max_epochs = 300
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3))
custom_hooks = [dict(type='InContextEpochHook'),
                dict(type='TrainLossEarlyStoppingHook', patience=10)]
