"""Stop training when the epoch's mean training loss stops improving (SAMIC §4).

mmengine's ``EarlyStoppingHook`` watches a VALIDATION metric (it acts in
``after_val_epoch``); SAMIC stops "if training loss does not improve over 10 epochs", which
needs no validation run. This hook averages the logged total loss over each training epoch.
"""
from typing import Optional

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.logging import print_log

from mmdet.registry import HOOKS


@HOOKS.register_module()
class TrainLossEarlyStoppingHook(Hook):
    """Early stopping on the mean training loss of an epoch.

    Args:
        patience: epochs without improvement before stopping (paper: 10).
        min_delta: an epoch improves when its loss is below ``best - min_delta``.
        loss_key: the logged value to watch (the total ``loss`` by default).
    """

    priority = 'LOW'

    def __init__(self, patience: int = 10, min_delta: float = 0.0,
                 loss_key: str = 'loss') -> None:
        if patience < 1:
            raise ValueError(f'patience must be >= 1, got {patience}')
        self.patience = patience
        self.min_delta = min_delta
        self.loss_key = loss_key
        self.best: Optional[float] = None
        self.wait = 0
        self._sum, self._n = 0.0, 0

    def before_train_epoch(self, runner) -> None:
        self._sum, self._n = 0.0, 0

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if outputs is None or self.loss_key not in outputs:
            raise KeyError(f'TrainLossEarlyStoppingHook watches {self.loss_key!r} but the '
                           f'train step logged {sorted(outputs or {})}')
        self._sum += float(outputs[self.loss_key].detach()) if isinstance(
            outputs[self.loss_key], torch.Tensor) else float(outputs[self.loss_key])
        self._n += 1

    def after_train_epoch(self, runner) -> None:
        stats = torch.tensor([self._sum, float(self._n)], dtype=torch.float64)
        all_reduce(stats)  # sums over processes (no-op when not distributed)
        if stats[1] == 0:
            return
        loss = float(stats[0] / stats[1])
        if self.best is None or loss < self.best - self.min_delta:
            self.best, self.wait = loss, 0
            return
        self.wait += 1
        if self.wait >= self.patience:
            runner.train_loop.stop_training = True
            print_log(f'early stopping: mean training {self.loss_key} {loss:.4f} has not '
                      f'improved on {self.best:.4f} for {self.patience} epochs',
                      logger='current')

