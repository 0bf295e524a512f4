"""InContextEpochHook: before each training epoch the in-context dataset learns the epoch,
through dataset wrappers, so the references drawn for a target change from epoch to epoch."""
from types import SimpleNamespace

import pytest
from mmengine.dataset import ClassBalancedDataset, RepeatDataset

from mmdet.registry import HOOKS
from mmsamantics.datasets import InContextCocoDataset, toy_classes
from mmsamantics.engine.hooks import InContextEpochHook


class EpochRecorder:
    """A dataset that records every ``set_epoch`` call."""

    def __init__(self):
        self.calls = []

    def set_epoch(self, epoch):
        self.calls.append(epoch)


def runner_at(dataset, epoch):
    """The two things the hook reads from mmengine's Runner."""
    return SimpleNamespace(train_dataloader=SimpleNamespace(dataset=dataset), epoch=epoch)


def train_dataset(root):
    return InContextCocoDataset(
        data_root=root, ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'), mode='train', ref_min_area=16 * 16, ref_seed=1,
        max_classes_per_image=2, metainfo=dict(classes=toy_classes()), pipeline=[])


def references(ds):
    """The references of every target, as (image id, label) pairs."""
    return [[(r['img_id'], r['label']) for r in ds.sample_references(i, ds.get_data_info(i))]
            for i in range(len(ds))]


def test_passes_the_runner_epoch_before_each_epoch():
    hook, ds = InContextEpochHook(), EpochRecorder()
    for epoch in (0, 1, 2, 7):  # 7: a resumed run continues from its epoch
        hook.before_train_epoch(runner_at(ds, epoch))
    assert ds.calls == [0, 1, 2, 7]


def test_unwraps_dataset_wrappers(toy_root):
    hook, ds = InContextEpochHook(), train_dataset(toy_root)
    # RepeatDataset / ClassBalancedDataset keep the wrapped dataset in `.dataset`
    hook.before_train_epoch(runner_at(RepeatDataset(ds, 3, lazy_init=True), 4))
    assert ds.epoch == 4
    hook.before_train_epoch(runner_at(ClassBalancedDataset(ds, 0.5, lazy_init=True), 5))
    assert ds.epoch == 5
    nested = SimpleNamespace(dataset=RepeatDataset(ds, 3, lazy_init=True))  # two levels
    hook.before_train_epoch(runner_at(nested, 6))
    assert ds.epoch == 6
    inner, outer = EpochRecorder(), EpochRecorder()  # only the outermost set_epoch is called
    outer.dataset = inner
    hook.before_train_epoch(runner_at(outer, 5))
    assert outer.calls == [5] and inner.calls == []


def test_other_datasets_are_left_alone():
    plain = SimpleNamespace(dataset=SimpleNamespace())  # no set_epoch anywhere
    InContextEpochHook().before_train_epoch(runner_at(plain, 3))
    assert vars(plain.dataset) == {}


def test_registered_and_changes_the_drawn_references(toy_root):
    hook = HOOKS.build(dict(type='InContextEpochHook'))
    assert isinstance(hook, InContextEpochHook)
    ds = train_dataset(toy_root)
    epoch0 = references(ds)
    hook.before_train_epoch(runner_at(RepeatDataset(ds, 2, lazy_init=True), 3))
    assert ds.epoch == 3
    epoch3 = references(ds)
    # exactly what a dataset set to epoch 3 draws, and not what epoch 0 drew
    fresh = train_dataset(toy_root)
    fresh.set_epoch(3)
    assert epoch3 == references(fresh)
    assert epoch3 != epoch0
    # back to epoch 0 (a rerun): the same references as the first time
    hook.before_train_epoch(runner_at(ds, 0))
    assert references(ds) == epoch0


@pytest.mark.parametrize('epoch', [1, 2])
def test_some_target_gets_new_references_every_epoch(toy_root, epoch):
    ds = train_dataset(toy_root)
    before = references(ds)
    InContextEpochHook().before_train_epoch(runner_at(ds, epoch))
    after = references(ds)
    changed = sum(a != b for a, b in zip(before, after))
    assert changed > 0, f'no target drew other references in epoch {epoch}'
