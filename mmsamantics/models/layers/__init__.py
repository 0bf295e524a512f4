from .deformable_attention import FP32DeformableAttention, im2col_chunks
from .pair_shared_linear import PairIndex, PairSharedLinear
from .token_merge_mlp import TokenMergeMLP

__all__ = ['TokenMergeMLP', 'PairIndex', 'PairSharedLinear', 'FP32DeformableAttention',
           'im2col_chunks']
