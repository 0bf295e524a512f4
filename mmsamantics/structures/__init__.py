"""Data structures shared by the detectors, the caches and the inference API: signatures of
frozen weights, reference banks and the per-reference feature store."""
from .reference_bank import load_reference_bank, save_reference_bank
from .reference_store import ReferenceStore, feature_rows, map_feature, stack_features
from .signature import cache_signature, sam_cache_parts, signature_of, weights_fingerprint

__all__ = ['ReferenceStore', 'feature_rows', 'map_feature', 'stack_features', 'cache_signature',
           'sam_cache_parts', 'load_reference_bank', 'save_reference_bank', 'signature_of',
           'weights_fingerprint']
