"""Region tokens: what SAM's image encoder sees inside a reference box, as extra tokens.

SAM's mask decoder turns a box into output tokens that say *where* and *how* to segment;
the paper finds they carry little of *what* the object is (Espinosa et al., "There is no
SAMantics!", §4-5). The encoder's own blocks keep more of the object's appearance (the
linear probes of §4 read them). A region token is the encoder level averaged over the
reference box: parameter-free, so it is frozen like the mask tokens and cached, banked and
re-used with them.

Shape shorthand: R references, L levels of C_l channels, D token width (SAM's prompt width).
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import roi_align

#: bins per side of the box average (2 x 2 RoIAlign bins of 2 x 2 samples each, averaged)
_BINS = 2


def num_region_tokens(level_channels: Sequence[int], width: int) -> int:
    """How many width-D tokens the pooled levels make (sum of C_l / D).

    Raises:
        ValueError: when the levels' channels do not split into whole tokens.
    """
    total = int(sum(level_channels))
    if total % width:
        raise ValueError(f'region tokens split the {total} pooled level channels '
                         f'({list(level_channels)}) into tokens of the SAM prompt width '
                         f'{width}; {total} is not a multiple of {width}: drop RegionTokens from '
                         'the reference sources with this backbone')
    return total // width


def box_region_tokens(levels: Sequence[Tensor], boxes: Tensor, input_size: int,
                      width: int, img_idx: Optional[Tensor] = None) -> Tensor:
    """Average each encoder level over its reference's box, as tokens of width D.

    Each level's box average is layer-normalised without parameters (the levels of a ViT
    differ in scale by orders of magnitude; the token-merge MLP should see them alike),
    the levels are concatenated and cut into rows of width D. The token-merge MLP
    flattens its input, so the rows are just the pooled vector in token layout.

    Args:
        levels: L tensors (B, C_l, h_l, w_l), the encoder outputs of B images (square
            padded input of side ``input_size``).
        boxes: (R, 4) xyxy boxes in input pixels.
        input_size: side of the padded model input.
        width: D, the token width.
        img_idx: (R,) the image of each box (default: box r on image r, B = R), so several
            boxes of one image pool its levels without copying them.

    Returns:
        (R, sum(C_l) / D, D) float32 region tokens.
    """
    if boxes.shape[0] == 0:
        return boxes.new_zeros(0, num_region_tokens([lv.shape[1] for lv in levels], width),
                               width)
    if img_idx is None:
        img_idx = torch.arange(len(boxes), device=boxes.device)
    n_imgs = {int(lv.shape[0]) for lv in levels}
    if len(n_imgs) != 1 or len(img_idx) != len(boxes) or int(img_idx.max()) >= min(n_imgs):
        raise ValueError(f'{len(boxes)} boxes on images {img_idx.tolist()[:8]} but levels of '
                         f'{sorted(n_imgs)} images: give one image index per box, each below '
                         'the number of images')
    rois = torch.cat([img_idx.to(boxes.device, torch.float32)[:, None], boxes.float()], dim=1)
    pooled = []
    for lv in levels:
        avg = roi_align(lv.float(), rois, (_BINS, _BINS), spatial_scale=lv.shape[-1] / input_size,
                        sampling_ratio=2, aligned=True).mean((2, 3))  # (R, C_l)
        pooled.append(F.layer_norm(avg, avg.shape[-1:]))
    flat = torch.cat(pooled, dim=1)
    return flat.reshape(len(boxes), num_region_tokens([p.shape[1] for p in pooled], width), width)
