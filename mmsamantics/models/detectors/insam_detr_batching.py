"""How InSAM-DETR's per-pair decoder and its losses run on GPU batches and under autocast.

Shape shorthand: P (target, class) pairs, Q queries, E = embed_dims, L decoder layers.
"""
from typing import Any, Callable, Dict, Optional

import torch
from torch import Tensor, nn

from ..layers.deformable_attention import im2col_chunks
from ..layers.pair_shared_linear import PairIndex
from ..layers.precision import fp32_region, to_float

# decoder inputs with one row per pair; spatial_shapes / level_start_index are shared
PAIR_ROWS = ('query', 'query_pos', 'memory', 'memory_mask', 'reference_points',
             'valid_ratios')


def decode_pairs(forward_decoder: Callable[..., Dict], decoder_inputs: Dict,
                 img_idx: Tensor, im2col_step: int,
                 pair_index: Optional[PairIndex] = None) -> Dict:
    """Deformable DETR's ``forward_decoder`` over P pairs in the calls that mmcv's CUDA
    deformable attention accepts (:func:`im2col_chunks`: P = 80 -> 64 + 16).

    Pairs are independent in the decoder (attention never crosses batch rows), so the
    concatenated outputs equal one call's.

    Args:
        forward_decoder: the detector's ``forward_decoder``.
        decoder_inputs: its keyword arguments; :data:`PAIR_ROWS` are (P, ...) tensors.
        img_idx: (P,) target of each pair.
        im2col_step: the decoder attentions' ``im2col_step``.
        pair_index: set to each chunk's ``img_idx`` during its call (shared value
            projection), cleared after; None = not shared.

    Returns:
        ``dict(hidden_states=(L, P, Q, E), references=[L + 1 tensors (P, Q, 2 or 4)])``.
    """
    outs = []
    for rows in im2col_chunks(len(img_idx), im2col_step):
        chunk = {k: (v[rows] if k in PAIR_ROWS and v is not None else v)
                 for k, v in decoder_inputs.items()}
        if pair_index is not None:
            pair_index.set(img_idx[rows])
        try:
            outs.append(forward_decoder(**chunk))
        finally:
            if pair_index is not None:
                pair_index.clear()
    if len(outs) == 1:
        return outs[0]
    hidden = [o['hidden_states'] for o in outs]
    if hidden[0].dim() != 4:
        raise ValueError('decoding pairs in chunks needs the decoder\'s intermediate outputs '
                         '(decoder.return_intermediate=True, as Deformable DETR\'s head does)')
    return dict(hidden_states=torch.cat(hidden, 1),
                references=[torch.cat(r) for r in zip(*(o['references'] for o in outs))])


def decoder_im2col_step(decoder: nn.Module) -> int:
    """The smallest ``im2col_step`` of the decoder's deformable attentions (64 by default)."""
    steps = [m.im2col_step for m in decoder.modules() if hasattr(m, 'im2col_step')]
    return min(steps) if steps else 64


def head_fp32(fn: Callable[..., Any], head_inputs: Dict, **kwargs) -> Any:
    """A DETR head's ``loss`` or ``predict`` with autocast off and float32 inputs.

    The head's forward, the Hungarian matching costs, the losses and the box decoding all
    run in float32: in fp16, mmdet's ``FocalLossCost`` gives ``-inf`` for logits above ~8
    and ``linear_sum_assignment`` raises; mmcv's focal-loss kernel takes no bf16; bf16 box
    coordinates of a 1024 px image are 4 px apart.

    Args:
        fn: ``bbox_head.loss`` or ``bbox_head.predict``.
        head_inputs: ``forward_transformer``'s output (``hidden_states``, ``references``,
            ``pairs``...).
        **kwargs: the other arguments of ``fn`` (``batch_data_samples``, ``rescale``).
    """
    inputs = {k: v.to_float() if k == 'pairs' else to_float(v)
              for k, v in head_inputs.items()}
    with fp32_region(head_inputs['hidden_states'].device):
        return fn(**inputs, **kwargs)
