from .in_context_epoch_hook import InContextEpochHook
from .train_loss_early_stopping_hook import TrainLossEarlyStoppingHook

__all__ = ['InContextEpochHook', 'TrainLossEarlyStoppingHook']
