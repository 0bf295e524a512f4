from .token_merge_mlp import TokenMergeMLP

__all__ = ['TokenMergeMLP']
