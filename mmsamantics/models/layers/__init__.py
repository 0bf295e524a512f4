from .pair_shared_linear import PairIndex, PairSharedLinear
from .token_merge_mlp import TokenMergeMLP

__all__ = ['TokenMergeMLP', 'PairIndex', 'PairSharedLinear']
