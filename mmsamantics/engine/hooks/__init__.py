from .in_context_epoch_hook import InContextEpochHook

__all__ = ['InContextEpochHook']
