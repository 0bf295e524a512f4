"""SAMIC's in-context saliency prompter: frozen ResNet + hypercorrelation + HSNet learner.

(reference image, reference heatmap G^c, target image) -> target heatmap G^t (SAMIC §3.3,
Fig. 5). Images are cropped to their valid (unpadded) region and resized to a fixed square
``input_size`` (paper: 224) before the ResNet; heatmaps live on that same normalised grid.

Shape shorthand: N images, P (target, reference) pairs, S the SAM-padded side, s the
prompter input side, (H, W) the heatmap size.
"""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.registry import MODELS
from .correlation import hypercorrelation_pyramid, mask_features


def crop_resize(images: Tensor, valid_hw: Sequence[Tuple[int, int]], size: int) -> Tensor:
    """Crop each padded image to its valid region and resize it to ``size`` x ``size``.

    Args:
        images: (N, 3, S, S), padded bottom/right (SAM preprocessing).
        valid_hw: N (h, w) valid sizes (``img_shape`` after the resize).

    Returns:
        (N, 3, size, size), bilinear (antialiased when shrinking, as PIL resizing is).
    """
    if len(valid_hw) != images.shape[0]:
        raise ValueError(f'{len(valid_hw)} valid sizes for {images.shape[0]} images')
    out = []
    for img, (h, w) in zip(images, valid_hw):
        h, w = int(h), int(w)
        if h < 1 or w < 1 or h > img.shape[-2] or w > img.shape[-1]:
            raise ValueError(f'valid size {(h, w)} does not fit the {tuple(img.shape[-2:])} '
                             'input')
        out.append(F.interpolate(img[None, :, :h, :w], (size, size), mode='bilinear',
                                 align_corners=False, antialias=True))
    return torch.cat(out) if out else images.new_zeros((0, 3, size, size))


@MODELS.register_module()
class HSNetPrompter(BaseModule):
    """Predicts a target's saliency heatmap from one reference image and its heatmap.

    Args:
        feature_extractor: config of the frozen backbone (:class:`SAMICResNetFeatures`).
        learner: config of :class:`HSNetLearner`; its ``in_channels`` default to the
            extractor's features per stage.
        input_size: side of the square images fed to the ResNet (paper: 224).
    """

    def __init__(self, feature_extractor: dict, learner: dict, input_size: int = 224,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.feature_extractor = MODELS.build(feature_extractor)
        per_stage = list(self.feature_extractor.num_per_stage)
        learner = dict(learner)
        learner.setdefault('in_channels', per_stage)
        if list(learner['in_channels']) != per_stage:
            raise ValueError(f"learner.in_channels {learner['in_channels']} must equal the "
                             f'number of features per stage of the extractor {per_stage}')
        self.learner = MODELS.build(learner)
        self.input_size = input_size

    def extract_feats(self, images: Tensor) -> List[Tensor]:
        """(N, 3, s, s) -> the frozen features, each (N, Cf_i, h_i, w_i)."""
        return self.feature_extractor(images)

    def forward(self, target_feats: List[Tensor], ref_feats: List[Tensor],
                ref_heatmaps: Tensor, out_size: Tuple[int, int]) -> Tensor:
        """Args:
            target_feats / ref_feats: per-pair features from :meth:`extract_feats`, each
                (P, Cf_i, h_i, w_i).
            ref_heatmaps: (P, 1, H', W') reference heatmaps on the reference's grid.
            out_size: (H, W) of the predicted heatmap.

        Returns:
            (P, 1, H, W) target heatmaps in [0, 1].
        """
        masked = mask_features(ref_feats, ref_heatmaps)
        pyramid = hypercorrelation_pyramid(target_feats, masked,
                                           self.feature_extractor.stage_ids)
        return self.learner(pyramid, out_size)
