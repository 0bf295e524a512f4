"""Pack a target and its references into (inputs, DetDataSample)."""
import numpy as np
import torch
from mmengine.structures import InstanceData

from mmdet.datasets.transforms import PackDetInputs
from mmdet.registry import TRANSFORMS

_CACHE_META = ('feat_cache_signature', 'feat_cache_input_size', 'feat_cache_stride',
               'ref_tokens_signature')


@TRANSFORMS.register_module()
class PackInContextDetInputs(PackDetInputs):
    """``PackDetInputs`` plus the references (and cached SAM outputs when present).

    The data sample gets ``ref_instances`` (InstanceData with ``bboxes`` (R, 4) in resized
    reference pixels and ``labels`` (R,)), ``ref_inputs`` (list of R (3, h_r, w_r) uint8
    tensors, BGR like the target; the data preprocessor normalises and pads them) and the
    metainfo ``ref_keys`` and ``ref_img_shapes`` (R (h_r, w_r) sizes of the resized
    references: their valid regions once the preprocessor pads them). With reference masks (``LoadInContextReferences(with_mask=True)``)
    also ``ref_masks``: a list of R (h_r, w_r) uint8 tensors, padded by the preprocessor.

    From a feature cache (:class:`LoadCachedSAMFeatures`): ``inputs`` is the (C_tot, h, w)
    feature tensor instead of an image. From cached tokens
    (:class:`LoadCachedReferenceTokens`): ``ref_tokens`` (R, T, D) replaces ``ref_inputs``.
    In both cases the cache's signature goes to the metainfo so the detector can check it.
    """

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        if 'feats' in results:
            packed['inputs'] = torch.from_numpy(np.ascontiguousarray(results['feats']))
        ds = packed['data_samples']
        ds.ref_instances = InstanceData(
            bboxes=torch.from_numpy(results['ref_bboxes']),
            labels=torch.from_numpy(results['ref_labels']))
        ds.ref_inputs = [torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1)))
                         for im in results['ref_imgs']]
        if 'ref_masks' in results:
            ds.ref_masks = [torch.from_numpy(np.ascontiguousarray(m))
                            for m in results['ref_masks']]
        if 'ref_tokens' in results:
            ds.ref_tokens = torch.from_numpy(results['ref_tokens'])
        meta = dict(ref_keys=list(results['ref_keys']),
                    ref_img_shapes=[tuple(im.shape[:2]) for im in results['ref_imgs']])
        # query_mode ('oracle' / 'open'): the detector caps detections per pair or per image
        meta.update({k: results[k] for k in _CACHE_META + ('query_mode',) if k in results})
        ds.set_metainfo(meta)
        return packed
