"""Data preprocessor that prepares targets AND their reference images for SAM."""
from typing import List

import torch
from mmengine.model.utils import stack_batch

from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS


@MODELS.register_module()
class InContextDataPreprocessor(DetDataPreprocessor):
    """``DetDataPreprocessor`` that also normalises and pads each sample's references.

    SAM's own ``preprocess`` normalises first and pads with 0 afterwards; mmdet's
    preprocessor does the same with ``pad_value=0``, so with SAM's mean/std,
    ``bgr_to_rgb=True`` and ``pad_size_divisor=S`` (after a longest-side resize to S) every
    target and reference becomes an S x S tensor that SAM sees exactly as it was trained.

    After ``forward`` each data sample's ``ref_inputs`` is a (R, 3, S, S) float tensor.
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

    def forward(self, data: dict, training: bool = False) -> dict:
        data = super().forward(data, training)
        for ds in data['data_samples'] or []:
            refs = ds.get('ref_inputs', None)
            if isinstance(refs, (list, tuple)):
                ds.ref_inputs = (self._prep_refs(refs) if len(refs) else
                                 data['inputs'].new_zeros((0, *data['inputs'].shape[1:])))
            if 'ref_instances' in ds:
                ds.ref_instances = ds.ref_instances.to(self.device)
        return data
