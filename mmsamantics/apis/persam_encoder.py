"""PerSAM in the inferencer: references -> SAM target embeddings, then predict.

A reference's target embedding is the mean of the SAM image embedding under its mask (its
box when it was given as a box or points), computed by :meth:`PerSAM.encode_references`
exactly as the detector computes it from a dataset reference.
"""
from typing import Tuple

from .reference_encoder import REFERENCE_ENCODERS, ReferenceEncoder


@REFERENCE_ENCODERS.register_module(name='PerSAM')
class PerSAMReferenceEncoder(ReferenceEncoder):
    """(1, D) SAM target embedding per reference for :class:`PerSAM`."""

    kind = 'persam'
    with_masks = True

    @property
    def feature_shape(self) -> Tuple[int, ...]:
        return (1, self.model.embed_dim)
