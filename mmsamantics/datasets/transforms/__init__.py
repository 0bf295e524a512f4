from .cached_features import (LoadCachedReferenceTokens, LoadCachedSAMFeatures,
                              RandomFlipCachedFeatures)
from .load_references import LoadInContextReferences
from .loading import LoadImageChecked, load_image_checked
from .pack_in_context_inputs import PackInContextDetInputs

__all__ = ['LoadImageChecked', 'load_image_checked', 'LoadInContextReferences',
           'PackInContextDetInputs', 'LoadCachedSAMFeatures', 'LoadCachedReferenceTokens',
           'RandomFlipCachedFeatures']
