from .cached_features import (LoadCachedReferenceTokens, LoadCachedSAMFeatures,
                              RandomFlipCachedFeatures)
from .heatmaps import GenerateSaliencyHeatmaps
from .load_references import LoadInContextReferences, decode_reference_mask
from .loading import LoadImageChecked, load_image_checked
from .pack_in_context_inputs import PackInContextDetInputs
from .pack_samic_inputs import PackSAMICInputs

__all__ = ['LoadImageChecked', 'load_image_checked', 'LoadInContextReferences',
           'decode_reference_mask', 'PackInContextDetInputs', 'LoadCachedSAMFeatures',
           'LoadCachedReferenceTokens', 'RandomFlipCachedFeatures', 'GenerateSaliencyHeatmaps',
           'PackSAMICInputs']
