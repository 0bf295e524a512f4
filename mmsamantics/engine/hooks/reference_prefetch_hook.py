"""Encode the training set's references once, one SAM pass per image, before training."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS
from ...structures import feature_rows


@HOOKS.register_module()
class ReferencePrefetchHook(Hook):
    """Fill the detector's reference store with every reference of the training pool.

    During training each (target, class) pair draws a reference from the pool, and the
    detector encodes a reference the first time it is drawn, one SAM pass per reference
    image; the first epochs pay for most of the pool that way (docs/toy_semantics.md measures
    it). Encoding the pool at the start
    groups the references by image, one SAM pass per image (references share images), and
    the tokens are the ones the detector would compute (:meth:`encode_references`), kept in
    its in-memory store, whose signature guards them like any cached token.

    Args:
        batch_size: images per SAM pass.
        max_references: skip the prefetch (with a message) when the pool holds more
            references than this or than the store keeps (COCO: use the feature cache,
            ``tools/misc/cache_embeddings.py``); default: the store's size.
    """

    priority = 'LOW'

    def __init__(self, batch_size: int = 8, max_references: Optional[int] = None) -> None:
        self.batch_size = batch_size
        self.max_references = max_references

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        dataset = runner.train_dataloader.dataset
        while not hasattr(dataset, 'ref_pool') and hasattr(dataset, 'dataset'):
            dataset = dataset.dataset  # unwrap RepeatDataset / ClassBalancedDataset
        store = getattr(model, 'reference_store', None)
        if store is None or not hasattr(model, 'encode_references') or \
                not hasattr(dataset, 'ref_pool'):
            raise TypeError('ReferencePrefetchHook needs an in-context detector (with '
                            'reference_store and encode_references) and an in-context '
                            f'training dataset (with ref_pool); got {type(model).__name__} '
                            f'and {type(dataset).__name__}')
        refs = [r for label in sorted(dataset.ref_pool) for r in dataset.ref_pool[label]]
        limit = min(store.max_entries, self.max_references or store.max_entries)
        if len(refs) > limit:
            print_log(f'ReferencePrefetchHook: {len(refs)} references exceed the {limit} the '
                      'store keeps: not prefetched (they are encoded as they are drawn)',
                      logger='current', level=30)
            return
        was_training = model.training
        model.eval()
        try:
            keys, tokens = model.encode_references(refs, batch_size=self.batch_size)
        finally:
            model.train(was_training)
        row = {k: j for j, k in enumerate(keys)}
        store.get(keys, encode=lambda missing: feature_rows(tokens, [row[k] for k in missing]))
        print_log(f'ReferencePrefetchHook: {len(row)} training references encoded, '
                  f'{len({r["img_path"] for r in refs})} SAM passes', logger='current')
