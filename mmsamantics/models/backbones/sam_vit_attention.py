"""SAM's ViT attention through ``torch.nn.functional.scaled_dot_product_attention``.

``segment_anything``'s ``Attention`` forms the (B * heads, hw, hw) logits with an explicit
matmul, adds the decomposed relative-position terms of MViTv2 (Li et al., "MViTv2:
Improved Multiscale Vision Transformers", §3.1: ``q R_h`` along rows plus ``q R_w`` along
columns) and applies a softmax and a second matmul. Here the same relative-position terms
are the additive ``attn_mask`` of one fused SDPA call (PyTorch picks its memory-efficient
or CPU flash kernel), which computes ``softmax(q k^T / sqrt(d) + bias) v`` without keeping
the softmax output for a backward pass that a frozen encoder never runs.

Shape shorthand: B windows (or images), h x w tokens, n heads, c = C / n channels per head.
"""
import torch
import torch.nn.functional as F
from segment_anything.modeling.image_encoder import Attention, get_rel_pos
from torch import Tensor, nn

SAM_ATTENTION_MODES = ('sdpa', 'explicit')


def rel_pos_bias(q: Tensor, rel_pos_h: Tensor, rel_pos_w: Tensor, size: tuple) -> Tensor:
    """The decomposed relative-position term of SAM's attention as an additive bias.

    Args:
        q: (B, n, h * w, c) queries (unscaled, as ``add_decomposed_rel_pos`` uses them).
        rel_pos_h: (2h - 1, c) and rel_pos_w: (2w - 1, c) the embeddings.
        size: (h, w).

    Returns:
        (B, n, h * w, h * w) bias in the dtype of ``q``.
    """
    h, w = size
    r_q = q.reshape(*q.shape[:2], h, w, q.shape[-1])
    rel_h = torch.einsum('bnhwc,hkc->bnhwk', r_q, get_rel_pos(h, h, rel_pos_h).to(q.dtype))
    rel_w = torch.einsum('bnhwc,wkc->bnhwk', r_q, get_rel_pos(w, w, rel_pos_w).to(q.dtype))
    bias = rel_h[..., :, None] + rel_w[..., None, :]  # (B, n, h, w, h, w)
    return bias.reshape(*q.shape[:2], h * w, h * w)


class SDPAAttention(Attention):
    """``segment_anything``'s ViT ``Attention`` (same parameters, same outputs to float
    rounding) computed by one ``scaled_dot_product_attention`` call.

    Installed on a built encoder by :meth:`convert`, so checkpoints load unchanged.
    """

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (B, h, w, C). Returns (B, h, w, C)."""
        b, h, w, _ = x.shape
        # (3, B, n, h * w, c), as segment_anything's layout
        qkv = self.qkv(x).reshape(b, h * w, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        bias = (rel_pos_bias(q, self.rel_pos_h, self.rel_pos_w, (h, w))
                if self.use_rel_pos else None)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
        out = out.view(b, self.num_heads, h, w, -1).permute(0, 2, 3, 1, 4).reshape(b, h, w, -1)
        return self.proj(out)

    @classmethod
    def convert(cls, module: nn.Module, mode: str = 'sdpa') -> None:
        """Switch every SAM ViT attention inside ``module`` to ``mode`` in place:
        ``'sdpa'`` (this class) or ``'explicit'`` (``segment_anything``'s own)."""
        if mode not in SAM_ATTENTION_MODES:
            raise ValueError(f'attention must be one of {SAM_ATTENTION_MODES}, got {mode!r}')
        for m in module.modules():
            if isinstance(m, Attention):
                m.__class__ = cls if mode == 'sdpa' else Attention
