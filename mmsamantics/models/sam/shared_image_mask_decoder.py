"""SAM's mask decoder without a copy of the image embedding per prompt.

``segment_anything``'s ``MaskDecoder.predict_masks`` repeats the (1, D, h, w) image embedding
once per prompt before its two-way transformer. Until the first image-to-token attention
updates it, the image side is the same for every prompt (the embedding plus the no-mask
embedding, which the prompt encoder expands over prompts): the first block's key and value
projections of the token-to-image attention and the query projection of the image-to-token
attention are per-image work. Here the decoder receives the embedding ONCE (batch 1) and
``segment_anything``'s own attention modules broadcast it over the N prompts, so that work
is done once, and the N copies exist only from the first image update on.

Shape shorthand: N prompts, T tokens per prompt, D width, h = w the embedding side.
"""
from typing import Tuple

import torch
from segment_anything.modeling import MaskDecoder
from torch import Tensor


class SharedImageMaskDecoder(MaskDecoder):
    """``segment_anything.modeling.MaskDecoder`` (same parameters and state-dict keys, same
    outputs to float rounding) that shares the image side across prompts when it can."""

    def predict_masks(self, image_embeddings: Tensor, image_pe: Tensor,
                      sparse_prompt_embeddings: Tensor,
                      dense_prompt_embeddings: Tensor) -> Tuple[Tensor, Tensor]:
        """Args: image_embeddings (1 or N, D, h, w), image_pe (1, D, h, w), sparse (N, T', D),
        dense (N, D, h, w). Returns (masks (N, M, 4h, 4w), IoU predictions (N, M))."""
        n = sparse_prompt_embeddings.shape[0]
        dense = dense_prompt_embeddings
        # one image and one dense prompt for all (the no-mask embedding, expanded: stride 0)
        shared = image_embeddings.shape[0] == 1 and (dense.shape[0] == 1 or dense.stride(0) == 0)
        if not shared or n == 1:
            return super().predict_masks(image_embeddings, image_pe, sparse_prompt_embeddings,
                                         dense_prompt_embeddings)
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight], dim=0)
        tokens = torch.cat((output_tokens.unsqueeze(0).expand(n, -1, -1),
                            sparse_prompt_embeddings), dim=1)
        src = image_embeddings + dense[:1]  # (1, D, h, w): broadcast by the attentions
        b, c, h, w = n, *src.shape[1:]
        hs, src = self.transformer(src, image_pe, tokens)  # src: (N, h * w, D) after block 1
        iou_token_out = hs[:, 0, :]
        mask_tokens_out = hs[:, 1:(1 + self.num_mask_tokens), :]
        upscaled = self.output_upscaling(src.transpose(1, 2).reshape(b, c, h, w))
        hyper_in = torch.stack([mlp(mask_tokens_out[:, i, :]) for i, mlp in
                                enumerate(self.output_hypernetworks_mlps)], dim=1)
        b, c, h, w = upscaled.shape
        masks = (hyper_in @ upscaled.view(b, c, h * w)).view(b, -1, h, w)
        return masks, self.iou_prediction_head(iou_token_out)
