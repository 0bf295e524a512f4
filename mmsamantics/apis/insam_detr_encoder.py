"""InSAM-DETR in the inferencer: references -> SAM tokens, predict through the detector.

Tokens come from :meth:`InSAMDETR.encode_references`: reference images are resized exactly
as :class:`LoadInContextReferences` does (longest side to the pipeline's reference scale)
and normalised/padded by the model's own data preprocessor, so a reference's tokens equal
those the detector computes itself. At prediction time the detector's own ``predict`` runs
unchanged, with the tokens lent by ``using_reference_features`` (see
:class:`ReferenceEncoder`), so no reference image is encoded again.
"""
from typing import Tuple

from .reference_encoder import REFERENCE_ENCODERS, ReferenceEncoder


@REFERENCE_ENCODERS.register_module(name='InSAMDETR')
class InSAMDETRReferenceEncoder(ReferenceEncoder):
    """Reference tokens (T' x D: the SAM mask tokens of each reference box, and its region
    tokens with ``reference_encoder='sam_tokens+regions'``) for InSAM-DETR."""

    kind = 'insam_detr'

    @property
    def feature_shape(self) -> Tuple[int, ...]:
        return (int(self.model.num_reference_tokens),
                int(self.model.mask_head.decoder.embed_dim))
