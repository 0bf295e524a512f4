"""Fingerprints that tie cached SAM outputs to the weights and preprocessing that made them.

A cache (or a reference bank) is only valid for the exact frozen SAM weights, the same
preprocessing (mean/std, channel order, input size) and the same returned blocks. The
signature hashes all of them; the detector refuses cached inputs whose signature differs
from its own, so a cache can never silently feed features of another model.
"""
import hashlib
import json

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
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b'')
    return h.hexdigest()


def cache_signature(model: nn.Module) -> str:
    """Signature of what a feature/token cache depends on for an InSAM-DETR-like model.

    Covers the backbone (weights, returned blocks, input size), the SAM prompt decoder that
    makes reference tokens, and the data preprocessor's normalisation.
    """
    dp = model.data_preprocessor
    parts = {
        'backbone': type(model.backbone).__name__,
        'backbone_weights': weights_fingerprint(model.backbone),
        'out_indices': list(getattr(model.backbone, 'out_indices', None)
                            or getattr(model.backbone, 'out_levels', None) or []),
        'img_size': getattr(model.backbone, 'img_size', None),
        'decoder_weights': weights_fingerprint(model.mask_head.decoder),
        'mean': [round(float(v), 6) for v in dp.mean.flatten()] if dp._enable_normalize else None,
        'std': [round(float(v), 6) for v in dp.std.flatten()] if dp._enable_normalize else None,
        'bgr_to_rgb': bool(dp._channel_conversion),
        'pad_value': float(dp.pad_value),
    }
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]
