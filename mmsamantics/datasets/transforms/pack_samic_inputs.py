"""Pack an in-context sample with SAMIC's heatmaps."""
import numpy as np
import torch

from mmdet.registry import TRANSFORMS
from ..fss_episodes import EPISODE_KEY
from .pack_in_context_inputs import PackInContextDetInputs


@TRANSFORMS.register_module()
class PackSAMICInputs(PackInContextDetInputs):
    """:class:`PackInContextDetInputs` plus the keys of :class:`GenerateSaliencyHeatmaps`.

    The data sample also gets ``ref_heatmaps`` (R, H, W) float tensor, ``gt_heatmaps``
    (R, H, W) when made, and the metainfo ``ref_img_shapes`` (R (h_r, w_r) valid sizes of
    the references, which the data preprocessor pads).
    """

    def transform(self, results: dict) -> dict:
        if 'ref_heatmaps' not in results:
            raise KeyError('PackSAMICInputs packs the heatmaps: put GenerateSaliencyHeatmaps '
                           'before it')
        packed = super().transform(results)
        ds = packed['data_samples']
        ds.ref_heatmaps = torch.from_numpy(np.ascontiguousarray(results['ref_heatmaps']))
        if 'gt_heatmaps' in results:
            ds.gt_heatmaps = torch.from_numpy(np.ascontiguousarray(results['gt_heatmaps']))
        ds.set_metainfo(dict(ref_img_shapes=list(results['ref_img_shapes'])))
        if EPISODE_KEY in results:
            ds.set_metainfo({EPISODE_KEY: results[EPISODE_KEY]})
        return packed
