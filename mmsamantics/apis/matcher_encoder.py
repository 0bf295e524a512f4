"""The training-free matcher in the inferencer: references -> DINOv2 features, then predict.

A reference's feature is the masked average of DINOv2 tokens inside its mask (its box when
it was given as a box or points), computed by :meth:`SAMDINOv2Matcher.encode_references`
exactly as the detector computes it from a dataset reference: same resize, same
preprocessing, same padding.
"""
from typing import Tuple

from .reference_encoder import REFERENCE_ENCODERS, ReferenceEncoder


@REFERENCE_ENCODERS.register_module(name='SAMDINOv2Matcher')
class SAMDINOv2MatcherReferenceEncoder(ReferenceEncoder):
    """(1, C) DINOv2 feature per reference for :class:`SAMDINOv2Matcher`."""

    kind = 'sam_dinov2_matcher'
    with_masks = True

    @property
    def feature_shape(self) -> Tuple[int, ...]:
        return (1, int(self.model.feature_extractor.embed_dim))
