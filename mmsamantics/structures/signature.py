"""Fingerprints that tie cached SAM outputs to the weights and preprocessing that made them.

A cache (or a reference bank) is only valid for the exact frozen SAM weights, the same
preprocessing (mean/std, channel order, input size) and the same returned blocks. The
signature hashes all of them; the detector refuses cached inputs whose signature differs
from its own, so a cache can never silently feed features of another model.
"""
import hashlib
import json
from typing import Callable, Optional

import torch
from torch import nn


def weights_fingerprint(module: nn.Module) -> str:
    """SHA-1 of every tensor of ``module.state_dict()`` (names, dtypes, shapes and bytes).

    Exact (no sampling): ~0.5 s for SAM ViT-B on a CPU, done once per model.
    """
    h = hashlib.sha1()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().to('cpu').contiguous()
        h.update(f'{name}|{t.dtype}|{tuple(t.shape)}|'.encode())
        # flat first: a 0-dim tensor (BatchNorm's num_batches_tracked) has no byte view
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b'')
    return h.hexdigest()


def preprocessing_parts(preprocessor: nn.Module) -> dict:
    """The normalisation of a data preprocessor (mean, std, channel order), for a
    signature's parts."""
    dp = preprocessor
    return dict(mean=[round(float(v), 6) for v in dp.mean.flatten()],
                std=[round(float(v), 6) for v in dp.std.flatten()],
                bgr_to_rgb=bool(dp._channel_conversion))


def signature_of(parts: dict, preprocessor: Optional[nn.Module] = None) -> str:
    """16-hex-digit SHA-1 of ``parts`` (JSON-serialisable), plus the normalisation of a
    data ``preprocessor`` when given (:func:`preprocessing_parts`)."""
    if preprocessor is not None:
        parts = dict(parts, **preprocessing_parts(preprocessor))
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def sam_cache_parts(model: nn.Module,
                    fingerprint: Callable[[nn.Module], str] = weights_fingerprint,
                    reference_tokens: str = 'sam_tokens') -> dict:
    """What a feature/token cache depends on for a model with a SAM ``backbone``, a SAM
    ``mask_head.decoder`` and a ``data_preprocessor``.

    Covers the backbone (weights, returned blocks, input size), the SAM prompt decoder that
    makes reference tokens and the data preprocessor's normalisation; ``reference_tokens``
    names the tokens made per reference (``'sam_tokens'``, the paper's, adds nothing, so
    caches made before other tokens existed keep their signature). The authors' input
    conventions of :class:`InContextDataPreprocessor` are a part of their own.
    """
    dp = model.data_preprocessor
    parts = {
        'backbone': type(model.backbone).__name__,
        'backbone_weights': fingerprint(model.backbone),
        'out_indices': list(getattr(model.backbone, 'out_indices', None)
                            or getattr(model.backbone, 'out_levels', None) or []),
        'img_size': getattr(model.backbone, 'img_size', None),
        'decoder_weights': fingerprint(model.mask_head.decoder),
        'mean': [round(float(v), 6) for v in dp.mean.flatten()] if dp._enable_normalize else None,
        'std': [round(float(v), 6) for v in dp.std.flatten()] if dp._enable_normalize else None,
        'bgr_to_rgb': bool(dp._channel_conversion),
        'pad_value': float(dp.pad_value),
    }
    if reference_tokens != 'sam_tokens':
        parts['reference_encoder'] = reference_tokens
    if getattr(dp, 'authors_conventions', False):  # 0-pixel padding, normalised after it
        parts['authors_conventions'] = True  # (only when on: other signatures stay as they were)
    return parts


def cache_signature(model: nn.Module) -> str:
    """The signature of a model's SAM image embeddings and prompt decoder
    (:func:`sam_cache_parts`; the annotation tool keys its embedding cache by it). An
    in-context detector's reference features have their own: ``model.cache_signature``."""
    return signature_of(sam_cache_parts(model))
