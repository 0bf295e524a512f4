"""InSAM-DETR's build-time helpers: the arguments of earlier configs, read in one place, and
the SAM decoder's geometry that the token-merge MLP's input size is derived from."""
import copy
import warnings
from typing import List, Sequence, Tuple

import torch
from torch import nn

from mmdet.registry import MODELS

# reference_encoder strings of earlier configs -> the reference sources that replace them
# (None: the option left the model)
LEGACY_ENCODERS = {
    'sam_tokens': ['SAMMaskTokens'],
    'sam_tokens+regions': ['SAMMaskTokens', 'RegionTokens'],
    'sam_tokens+regions+shape': ['SAMMaskTokens', 'RegionTokens', 'ShapeToken'],
    'class_code': None,
}
CLASS_CODE_MOVED = ("reference_encoder='class_code' is the analysis model "
                    "type='ClassCodeInSAMDETR' now (with num_class_codes; "
                    "custom_imports=dict(imports=['mmsamantics.analysis']))")


def legacy_insam_detr_args(name: str, kwargs: dict, sources: Sequence[dict]) -> List[dict]:
    """Read (and pop from ``kwargs``) the keys that earlier InSAM-DETR configs used.

    ``reference_encoder='sam_tokens+regions'`` becomes ``reference_sources=[...]`` (with a
    warning naming it); ``bbox_head.type='DeformableDETRHead'`` becomes the in-context head
    that takes the pairs record, :class:`InContextDETRHead` (same weights). Returns the
    reference sources to build.
    """
    sources = [dict(s) for s in sources]
    if 'num_class_codes' in kwargs:
        raise ValueError(f'{name}: {CLASS_CODE_MOVED}')
    if 'reference_encoder' in kwargs:
        encoder = kwargs.pop('reference_encoder')
        if LEGACY_ENCODERS.get(encoder) is None:
            raise ValueError(f'{name}: {CLASS_CODE_MOVED}' if encoder in LEGACY_ENCODERS else
                             f'{name}: unknown reference_encoder {encoder!r}; it is replaced '
                             "by reference_sources, e.g. [dict(type='SAMMaskTokens'), "
                             "dict(type='RegionTokens')]")
        sources = [dict(type=t) for t in LEGACY_ENCODERS[encoder]]
        warnings.warn(f'model.reference_encoder={encoder!r} is now model.reference_sources='
                      f'{sources}; the old key is read for now', FutureWarning,
                      stacklevel=3)
    head = kwargs.get('bbox_head')
    if head is not None and head.get('type') in ('DeformableDETRHead',
                                                 'mmdet.DeformableDETRHead'):
        kwargs['bbox_head'] = dict(head, type='InContextDETRHead')
    return sources


def probe_decoder_width(mask_head: dict, sources: Sequence[nn.Module],
                        level_channels: Sequence[int]) -> Tuple[int, int]:
    """(T', D): the tokens per reference that ``sources`` make and the SAM decoder's width.

    The decoder is built once without its checkpoint to read them, with the random state
    restored after, so the detector's weights are drawn exactly as when the token-merge
    MLP is built before the mask head (its size given in the config).
    """
    cfg = copy.deepcopy(dict(mask_head))
    if isinstance(cfg.get('decoder'), dict) and 'checkpoint' in cfg['decoder']:
        cfg['decoder'] = dict(cfg['decoder'], checkpoint=None)
    with torch.random.fork_rng(devices=[]):
        dec = MODELS.build(cfg).decoder
    n = sum(s.num_tokens(list(level_channels), dec) for s in sources)
    return n, int(dec.embed_dim)
