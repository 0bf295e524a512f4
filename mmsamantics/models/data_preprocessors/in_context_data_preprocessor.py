"""Data preprocessor that prepares targets AND their reference images for SAM."""
from typing import List

import torch
from mmengine.model.utils import stack_batch

from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.models.utils.misc import samplelist_boxtype2tensor
from mmdet.registry import MODELS


@MODELS.register_module()
class InContextDataPreprocessor(DetDataPreprocessor):
    """``DetDataPreprocessor`` that also normalises and pads each sample's references.

    SAM's own ``preprocess`` normalises first and pads with 0 afterwards; mmdet's
    preprocessor does the same with ``pad_value=0``, so with SAM's mean/std,
    ``bgr_to_rgb=True`` and ``pad_size_divisor=S`` (after a longest-side resize to S) every
    target and reference becomes an S x S tensor that SAM sees exactly as it was trained.

    After ``forward`` each data sample's ``ref_inputs`` is a (R, 3, S, S) float tensor, and
    its ``ref_masks`` (when the pipeline loads them) a (R, S, S) bool tensor padded with 0
    like the images.

    Inputs read from a SAM feature cache (metainfo ``feat_cache_signature``) are already
    SAM's outputs: they are only stacked to (B, C_tot, h, w) float32, and every sample's
    ``batch_input_shape`` / ``pad_shape`` is set to the S x S input the features came from.
    """

    def _prep_refs(self, refs: List[torch.Tensor]) -> torch.Tensor:
        out = []
        for r in refs:
            r = r.to(self.device).float()
            if self._channel_conversion:
                r = r[[2, 1, 0], ...]
            if self._enable_normalize:
                r = (r - self.mean) / self.std
            out.append(r)
        return stack_batch(out, self.pad_size_divisor, self.pad_value)

    def _forward_cached(self, data: dict) -> dict:
        data = self.cast_data(data)
        samples = data['data_samples']
        sizes = {ds.metainfo.get('feat_cache_input_size') for ds in samples}
        if len(sizes) != 1 or None in sizes:
            raise ValueError('a batch mixes cached features and images, or caches of '
                             'different input sizes: use one cache per dataloader')
        s = sizes.pop()
        for ds in samples:
            ds.set_metainfo(dict(batch_input_shape=(s, s), pad_shape=(s, s)))
        if self.boxtype2tensor:
            samplelist_boxtype2tensor(samples)
        return dict(inputs=torch.stack([f.float() for f in data['inputs']]),
                    data_samples=samples)

    def forward(self, data: dict, training: bool = False) -> dict:
        samples = data.get('data_samples') or []
        if samples and 'feat_cache_signature' in samples[0].metainfo:
            data = self._forward_cached(data)
        else:
            data = super().forward(data, training)
        for ds in data['data_samples'] or []:
            refs = ds.get('ref_inputs', None)
            if isinstance(refs, (list, tuple)):
                ds.ref_inputs = (self._prep_refs(refs) if len(refs) else None)
            masks = ds.get('ref_masks', None)
            if isinstance(masks, (list, tuple)):
                ds.ref_masks = (stack_batch([m[None].to(self.device) for m in masks],
                                            self.pad_size_divisor, 0)[:, 0].bool()
                                if len(masks) else None)
            if 'ref_tokens' in ds:
                ds.ref_tokens = ds.ref_tokens.to(self.device)
            if 'ref_instances' in ds:
                ds.ref_instances = ds.ref_instances.to(self.device)
        return data
