"""SAM 3 weights in the released ``sam3.pt`` layout, for the tests (random, seeded)."""
import torch
from torch import nn

from mmsamantics.models.sam3 import (build_sam3_geometry_encoder, build_sam3_sam_heads,
                                     build_sam3_vision_backbone)


def released_layout(preset: str, path: str, seed: int = 0) -> dict:
    """Seeded random SAM 3 parts saved at ``path`` as the released ``sam3.pt`` is laid out
    (``{'model': {'detector.*', 'tracker.*'}}``); returns the parts."""
    torch.manual_seed(seed)
    parts = dict(neck=build_sam3_vision_backbone(preset, interactive=True),
                 geometry=build_sam3_geometry_encoder(preset))
    parts['prompt_encoder'], parts['mask_decoder'] = build_sam3_sam_heads(preset)
    parts['no_mem_embed'] = torch.randn(1, 1, parts['mask_decoder'].transformer_dim) * 0.02
    state = {f'detector.backbone.vision_backbone.{k}': v
             for k, v in parts['neck'].state_dict().items()}
    state.update({f'detector.geometry_encoder.{k}': v
                  for k, v in parts['geometry'].state_dict().items()})
    for name in ('prompt_encoder', 'mask_decoder'):
        state.update({f'tracker.sam_{name}.{k}': v
                      for k, v in parts[name].state_dict().items()})
    state['tracker.no_mem_embed'] = parts['no_mem_embed']
    state['tracker.maskmem_tpos_enc'] = torch.zeros(1)  # the video tracker: not read
    torch.save({'model': state}, path)
    for m in parts.values():
        if isinstance(m, nn.Module):
            m.eval()
    return parts
