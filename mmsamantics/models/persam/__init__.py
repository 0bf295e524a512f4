from .guided_decoding import guided_attention, guided_mask_decoder, guided_transformer
from .location_prior import (attention_bias, cosine_map, input_prior, negative_points,
                             select_points)

__all__ = ['guided_attention', 'guided_mask_decoder', 'guided_transformer', 'cosine_map',
           'input_prior', 'select_points', 'negative_points', 'attention_bias']
