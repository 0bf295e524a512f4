from .in_context_epoch_hook import InContextEpochHook
from .reference_prefetch_hook import ReferencePrefetchHook
from .train_loss_early_stopping_hook import TrainLossEarlyStoppingHook

__all__ = ['InContextEpochHook', 'ReferencePrefetchHook', 'TrainLossEarlyStoppingHook']
