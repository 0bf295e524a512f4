"""TrainLossEarlyStoppingHook: stops after `patience` epochs without a lower mean loss."""
from types import SimpleNamespace

import pytest
import torch

from mmsamantics.engine.hooks import TrainLossEarlyStoppingHook


def run_epochs(hook, epoch_losses):
    runner = SimpleNamespace(train_loop=SimpleNamespace(stop_training=False))
    stopped_at = None
    for e, losses in enumerate(epoch_losses):
        hook.before_train_epoch(runner)
        for i, v in enumerate(losses):
            hook.after_train_iter(runner, i, outputs=dict(loss=torch.tensor(v)))
        hook.after_train_epoch(runner)
        if runner.train_loop.stop_training and stopped_at is None:
            stopped_at = e
    return stopped_at


def test_stops_on_the_mean_epoch_loss():
    # epoch means: 2, 1, 1.5, 1.0 (not < 1 - 0.01), 1.2 -> stop at epoch 4 with patience 3
    assert run_epochs(TrainLossEarlyStoppingHook(patience=3, min_delta=0.01),
                      [[3, 1], [1, 1], [2, 1], [0.5, 1.5], [1.2, 1.2], [0, 0]]) == 4
    assert run_epochs(TrainLossEarlyStoppingHook(patience=2), [[3], [2], [1], [0.5]]) is None


def test_bad_arguments():
    with pytest.raises(ValueError, match='patience'):
        TrainLossEarlyStoppingHook(patience=0)
    hook = TrainLossEarlyStoppingHook(loss_key='loss_x')
    with pytest.raises(KeyError, match='loss_x'):
        hook.after_train_iter(None, 0, outputs=dict(loss=1.0))
