"""ReferencePrefetchHook: the training pool encoded once, one SAM pass per image, into the
detector's store; the tokens equal those the detector computes when a reference is drawn."""
from types import SimpleNamespace

import pytest
import torch
from mmengine.dataset import pseudo_collate

from mmdet.registry import DATASETS
from helpers import toy_model
from mmsamantics.engine.hooks import ReferencePrefetchHook
from mmsamantics.models.detectors.insam_detr_pairs import gather_references

SHAPE = dict(reference_encoder='sam_tokens+regions+shape', token_merge=dict(num_tokens=8))


def test_prefetched_tokens_equal_the_drawn_ones(toy_root):
    cfg, model = toy_model(toy_root, dict(neg_classes_per_image=2), **SHAPE)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    runner = SimpleNamespace(model=model, train_dataloader=SimpleNamespace(dataset=dataset))
    calls = []
    orig = model.backbone.forward
    model.backbone.forward = lambda x: calls.append(len(x)) or orig(x)
    try:
        ReferencePrefetchHook(batch_size=4).before_train(runner)
    finally:
        del model.backbone.forward
    pool = [r for rs in dataset.ref_pool.values() for r in rs]
    images = {r['img_path'] for r in pool}
    assert sum(calls) == len(images) < len(pool)  # one SAM pass per image, not per reference
    assert set(model.reference_store.cached_keys()) == {r['key'] for r in pool}
    assert model.training  # the mode is restored
    # what training draws: the tokens of the batch's references, from the store ...
    data = model.data_preprocessor(pseudo_collate([dataset[i] for i in range(3)]), True)
    refs = gather_references(data['data_samples'], model.reference_store.check_signature)
    model.backbone.forward = lambda x: calls.append(-1) or orig(x)
    try:
        got = model._gathered_tokens(refs)
    finally:
        del model.backbone.forward
    assert -1 not in calls  # nothing encoded again
    # ... equal to the detector's own encoding of the same references
    model.reference_store = model.reference_store.spawn()
    with torch.no_grad():
        want = model._gathered_tokens(refs)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_prefetch_needs_an_in_context_pair():
    runner = SimpleNamespace(model=torch.nn.Linear(1, 1),
                             train_dataloader=SimpleNamespace(dataset=[]))
    with pytest.raises(TypeError, match='in-context detector'):
        ReferencePrefetchHook().before_train(runner)


def test_a_pool_larger_than_the_store_is_left_to_training(toy_root):
    cfg, model = toy_model(toy_root, dict(neg_classes_per_image=2), **SHAPE)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    runner = SimpleNamespace(model=model, train_dataloader=SimpleNamespace(dataset=dataset))
    ReferencePrefetchHook(max_references=3).before_train(runner)
    assert len(model.reference_store) == 0
