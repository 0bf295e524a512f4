"""Reference sources: the kinds of tokens a frozen SAM makes of a reference box, listed in
an InSAM-DETR config (``reference_sources=[dict(type='SAMMaskTokens'), ...]``)."""
from .base import ReferenceSource, ReferenceView, sources_name, token_slices
from .region_tokens import RegionTokens
from .sam3_exemplar_tokens import SAM3ExemplarTokens
from .sam_mask_tokens import SAMMaskTokens
from .shape_token import QueryShapeEncoder, ShapeToken

__all__ = ['ReferenceSource', 'ReferenceView', 'sources_name', 'token_slices', 'RegionTokens',
           'SAMMaskTokens', 'SAM3ExemplarTokens', 'ShapeToken', 'QueryShapeEncoder']
