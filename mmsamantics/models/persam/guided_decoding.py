"""SAM's mask decoder with PerSAM's two training-free modulations.

Zhang et al., "Personalize Segment Anything Model with One Shot" (PerSAM, §2.2):

- *target-guided attention*: in every token-to-image cross-attention of the two-way
  transformer, the attention map over the image tokens is re-weighted by the location
  confidence map: ``softmax(softmax(QK^T / sqrt(c)) + bias)``, ``bias`` the sigmoid of the
  standardised cosine map (the authors' code does the same);
- *target-semantic prompting*: the reference's mean SAM feature is added to the decoder's
  tokens before every two-way block.

The functions below run ``segment_anything``'s own modules (projections, norms, MLPs,
hypernetworks) in the order of ``MaskDecoder.predict_masks`` / ``TwoWayTransformer`` /
``TwoWayAttentionBlock``; with ``bias=None`` and ``target=None`` they give exactly SAM's
output (tested against ``MaskDecoder.forward``).

Shape shorthand: N prompts, T tokens (output + prompt tokens), D decoder width,
h x w the embedding grid, M mask tokens.
"""
import math
from typing import Optional, Tuple

import torch
from segment_anything.modeling.mask_decoder import MaskDecoder
from segment_anything.modeling.transformer import (Attention, TwoWayAttentionBlock,
                                                   TwoWayTransformer)
from torch import Tensor


def guided_attention(attn: Attention, q: Tensor, k: Tensor, v: Tensor,
                     bias: Optional[Tensor] = None) -> Tensor:
    """``Attention.forward`` with PerSAM's re-weighting of the attention map.

    Args:
        attn: a SAM ``Attention`` module (its projections are used).
        q: (N, T, D) queries. k, v: (N, h*w, D) keys and values.
        bias: (N, 1, 1, h*w) additive weights on the softmaxed map, or None (SAM's).

    Returns:
        (N, T, D).
    """
    q = attn._separate_heads(attn.q_proj(q), attn.num_heads)
    k = attn._separate_heads(attn.k_proj(k), attn.num_heads)
    v = attn._separate_heads(attn.v_proj(v), attn.num_heads)
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    if bias is not None:
        weights = torch.softmax(weights + bias, dim=-1)
    return attn.out_proj(attn._recombine_heads(weights @ v))


def _guided_block(layer: TwoWayAttentionBlock, queries: Tensor, keys: Tensor,
                  query_pe: Tensor, key_pe: Tensor, bias: Optional[Tensor]
                  ) -> Tuple[Tensor, Tensor]:
    """``TwoWayAttentionBlock.forward`` with a guided token-to-image attention."""
    if layer.skip_first_layer_pe:
        queries = layer.self_attn(q=queries, k=queries, v=queries)
    else:
        q = queries + query_pe
        queries = queries + layer.self_attn(q=q, k=q, v=queries)
    queries = layer.norm1(queries)
    queries = layer.norm2(queries + guided_attention(
        layer.cross_attn_token_to_image, queries + query_pe, keys + key_pe, keys, bias))
    queries = layer.norm3(queries + layer.mlp(queries))
    attn_out = layer.cross_attn_image_to_token(q=keys + key_pe, k=queries + query_pe,
                                               v=queries)
    keys = layer.norm4(keys + attn_out)
    return queries, keys


def guided_transformer(transformer: TwoWayTransformer, image_embedding: Tensor,
                       image_pe: Tensor, tokens: Tensor, bias: Optional[Tensor] = None,
                       target: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """``TwoWayTransformer.forward`` with PerSAM's guidance.

    Args:
        image_embedding, image_pe: (N, D, h, w).
        tokens: (N, T, D) output and prompt tokens.
        bias: (N, 1, 1, h*w) target-guided attention weights, or None.
        target: (N, 1, D) target embedding added to the queries before every block
            (target-semantic prompting), or None.

    Returns:
        (queries (N, T, D), keys (N, h*w, D)).
    """
    keys = image_embedding.flatten(2).permute(0, 2, 1)
    key_pe = image_pe.flatten(2).permute(0, 2, 1)
    # the authors' code adds the target in place to the tokens before the first block,
    # which also shifts the tokens' positional role (query_pe) in every block: kept
    pe = tokens if target is None else tokens + target
    queries = pe
    for i, layer in enumerate(transformer.layers):
        if target is not None and i > 0:
            queries = queries + target
        queries, keys = _guided_block(layer, queries, keys, pe, key_pe, bias)
    attn_out = guided_attention(transformer.final_attn_token_to_image, queries + pe,
                                keys + key_pe, keys, bias)
    return transformer.norm_final_attn(queries + attn_out), keys


def guided_mask_decoder(md: MaskDecoder, image_embedding: Tensor, image_pe: Tensor,
                        sparse: Tensor, dense: Tensor, multimask_output: bool,
                        bias: Optional[Tensor] = None, target: Optional[Tensor] = None
                        ) -> Tuple[Tensor, Tensor]:
    """``MaskDecoder.forward`` (one image, N prompts) with PerSAM's guidance.

    Args:
        image_embedding: (1, D, h, w). image_pe: (1, D, h, w) the dense positional encoding.
        sparse: (N, P, D) and dense: (N, D, h, w) prompt embeddings.
        multimask_output: the 3 multimask outputs instead of the single mask.
        bias, target: see :func:`guided_transformer`.

    Returns:
        (low-res logits (N, K, 4h, 4w), IoU predictions (N, K)), K = 3 or 1.
    """
    out_tokens = torch.cat([md.iou_token.weight, md.mask_tokens.weight], dim=0)
    tokens = torch.cat([out_tokens.unsqueeze(0).expand(len(sparse), -1, -1), sparse], 1)
    src = image_embedding.expand(len(sparse), -1, -1, -1) + dense
    pos = image_pe.expand(len(sparse), -1, -1, -1)
    b, c, h, w = src.shape
    hs, src = guided_transformer(md.transformer, src, pos, tokens, bias, target)
    mask_tokens = hs[:, 1:1 + md.num_mask_tokens]
    up = md.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
    hyper = torch.stack([mlp(mask_tokens[:, i]) for i, mlp in
                         enumerate(md.output_hypernetworks_mlps)], dim=1)
    masks = (hyper @ up.flatten(2)).view(b, -1, *up.shape[-2:])
    iou = md.iou_prediction_head(hs[:, 0])
    sel = slice(1, None) if multimask_output else slice(0, 1)
    return masks[:, sel], iou[:, sel]
