"""Tell the in-context dataset the epoch, so references change every epoch."""
from mmengine.hooks import Hook

from mmdet.registry import HOOKS


@HOOKS.register_module()
class InContextEpochHook(Hook):
    """Calls ``dataset.set_epoch(epoch)`` before each training epoch.

    References are drawn from ``(ref_seed, epoch, index)``, so a run is reproducible and
    resumable while still seeing new references each epoch. With ``persistent_workers=True``
    the workers keep the dataset copy of the first epoch: leave it False (the default here)
    for per-epoch references.
    """

    def before_train_epoch(self, runner) -> None:
        dataset = runner.train_dataloader.dataset
        while not hasattr(dataset, 'set_epoch') and hasattr(dataset, 'dataset'):
            dataset = dataset.dataset  # unwrap RepeatDataset / ClassBalancedDataset
        if hasattr(dataset, 'set_epoch'):
            dataset.set_epoch(runner.epoch)
