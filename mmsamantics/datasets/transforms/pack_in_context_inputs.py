"""Pack a target and its references into (inputs, DetDataSample)."""
import numpy as np
import torch
from mmengine.structures import InstanceData

from mmdet.datasets.transforms import PackDetInputs
from mmdet.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PackInContextDetInputs(PackDetInputs):
    """``PackDetInputs`` plus the references.

    The data sample gets ``ref_instances`` (InstanceData with ``bboxes`` (R, 4) in resized
    reference pixels and ``labels`` (R,)), ``ref_inputs`` (list of R (3, h_r, w_r) uint8
    tensors, BGR like the target; the data preprocessor normalises and pads them) and the
    metainfo ``ref_keys``.
    """

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        ds = packed['data_samples']
        ds.ref_instances = InstanceData(
            bboxes=torch.from_numpy(results['ref_bboxes']),
            labels=torch.from_numpy(results['ref_labels']))
        ds.ref_inputs = [torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)))
                         for im in results['ref_imgs']]
        ds.set_metainfo(dict(ref_keys=list(results['ref_keys'])))
        return packed
