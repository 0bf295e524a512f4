"""Shape tokens: SAM's own mask for a reference box, in the box's frame, as a token.

The mask decoder's output tokens say how to segment the object, and the region tokens
(:mod:`.region_tokens`) average the encoder over the box, which keeps colour and texture but
little of the outline. What SAM does best is the outline itself: the mask it predicts for
the reference box. A shape token is that mask's probability map resampled to a g x g grid
aligned with the box (g * g = D, SAM's prompt width: 16 x 16 for SAM / SAM 2, 8 x 8 for the
tiny preset), mapped to [-1, 1]. It is parameter-free and depends only on the frozen SAM, so
it is cached, banked and stored in the feature cache like the other reference tokens.

Shape shorthand: R references, D token width, g = sqrt(D), H = W the low-res mask side.
"""
import math

import torch
from torch import Tensor
from torchvision.ops import roi_align


def shape_grid(width: int) -> int:
    """g, the side of the shape token's grid (g * g = D).

    Raises:
        ValueError: when D is not a square number.
    """
    g = math.isqrt(int(width))
    if g * g != width:
        raise ValueError(f'a shape token is a g x g mask grid of the SAM prompt width {width}, '
                         f'which is not a square number: drop ShapeToken from the reference '
                         'sources with this SAM')
    return g


def box_shape_tokens(mask_logits: Tensor, boxes: Tensor, input_size: int,
                     width: int) -> Tensor:
    """One shape token per reference: its mask logits inside its box, as a g x g grid.

    The logits are resampled (RoIAlign, bilinear) before the sigmoid, as SAM upsamples its
    logits before thresholding them.

    Args:
        mask_logits: (R, 1, H, W) SAM's low-res mask logits for each reference's box prompt
            (its single-mask output), on the padded model input of side ``input_size``.
        boxes: (R, 4) xyxy boxes in input pixels.
        input_size: side of the padded model input.
        width: D, the token width (g = sqrt(D), :func:`shape_grid`).

    Returns:
        (R, 1, D) float32 tokens in [-1, 1], the grid row-major from the box's top-left.
    """
    g = shape_grid(width)
    if mask_logits.dim() != 4 or mask_logits.shape[1] != 1 or len(mask_logits) != len(boxes):
        raise ValueError(f'shape tokens need (R, 1, H, W) mask logits for R = {len(boxes)} '
                         f'boxes, got {tuple(mask_logits.shape)}')
    if boxes.shape[0] == 0:
        return boxes.new_zeros(0, 1, width, dtype=torch.float32)
    rois = torch.cat([torch.arange(len(boxes), device=boxes.device, dtype=torch.float32)[:, None],
                      boxes.float()], dim=1)
    grid = roi_align(mask_logits.float(), rois, (g, g),
                     spatial_scale=mask_logits.shape[-1] / input_size, sampling_ratio=2,
                     aligned=True)  # (R, 1, g, g)
    return (2 * torch.sigmoid(grid) - 1).reshape(len(boxes), 1, width)
