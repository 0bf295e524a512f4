"""Frozen-SAM caches: target features and reference tokens computed once (SPEC §1 ★)."""
from .feature_cache import CACHE_VERSION, FeatureCache, cache_relpath
from .signature import cache_signature, weights_fingerprint

__all__ = ['CACHE_VERSION', 'FeatureCache', 'cache_relpath', 'cache_signature',
           'weights_fingerprint']
