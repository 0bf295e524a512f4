"""SAM 3's exemplar encoder as a reference source.

SAM 3 takes an exemplar as a box on the image it searches: its geometry-and-exemplar encoder
turns the box into a token (its projected coordinates + its RoI-pooled features + its
position encoding, plus a label embedding), appends a CLS token, and lets both attend to the
image's ``vision_features`` (Sapkota et al., "The SAM2-to-SAM3 gap", §3; ``sam3``'s
``SequenceGeometryEncoder``). InSAM-DETR reads these exemplar tokens of the reference box on
the reference image, the SAM 3 counterpart of SAM's mask tokens (Espinosa et al., §5.1).

Shape shorthand: R references, D SAM 3's width (256; tiny 32, toy 64), h = w = S / 14.
"""
from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmdet.structures.bbox import bbox_xyxy_to_cxcywh
from ...utils.checkpoint import load_state_dict_file, load_strict
from ...utils.frozen import freeze
from ..sam.sam3_prompt_decoder import SAM3PromptDecoder
from ..sam3.cpu_compat import pinning_optional
from ..sam3.sam3_checkpoint import sam3_detector_state
from ..sam3.sam3_presets import (CKPT_URL, build_sam3_geometry_encoder, check_sam3_preset,
                                 sam3_position_encoding)
from .base import ReferenceSource, ReferenceView

VISION_FEATURES_LEVEL = 2  # SAM 3's detector (and its geometry encoder) read neck level 2


@MODELS.register_module()
class SAM3ExemplarTokens(ReferenceSource):
    """The exemplar tokens SAM 3 makes of a reference box: (box token, CLS token).

    Needs a :class:`~mmsamantics.models.backbones.SAM3ImageEncoder` that returns neck level
    2 (``vision_features``) among its ``out_levels``. The box is normalised by the input
    side S, the frame of the features (SAM 3's own input is the image squashed to S x S:
    there, too, boxes are fractions of the feature map).

    Args:
        preset: SAM 3 preset of the backbone (``full``, ``tiny``, ``toy``).
        checkpoint: local ``sam3.pt`` (or a checkpoint in its layout): the detector's
            ``geometry_encoder.*`` weights are loaded strictly. None = random weights.
    """

    name = 'sam3_exemplar'

    def __init__(self, preset: str = 'full', checkpoint: Optional[str] = None) -> None:
        super().__init__()
        check_sam3_preset(preset)
        state = (None if checkpoint is None else sam3_detector_state(load_state_dict_file(
            checkpoint, f'Download sam3.pt from {CKPT_URL}.')))
        self.geometry_encoder = build_sam3_geometry_encoder(preset)
        if state is not None:
            load_strict(self.geometry_encoder, state, 'geometry_encoder.', source=checkpoint)
        self.image_pos = sam3_position_encoding(preset)  # the neck's, for the cross-attention
        freeze(self)
        self.eval()

    def train(self, mode: bool = True) -> 'SAM3ExemplarTokens':
        return super().train(False)  # frozen: dropout of the full encoder stays off

    def num_tokens(self, level_channels: Sequence[int], decoder: nn.Module) -> int:
        if not isinstance(decoder, SAM3PromptDecoder):
            # another SAM's levels would be read as SAM 3's vision_features without a word
            raise ValueError(f'SAM3ExemplarTokens reads SAM 3\'s features, but the prompt '
                             f'decoder is {type(decoder).__name__}: use SAM3ImageEncoder('
                             "embedding='interactive') with SAM3PromptDecoder")
        d = int(self.geometry_encoder.d_model)
        if d != int(decoder.embed_dim):
            raise ValueError(f'SAM 3 exemplar tokens are {d} wide but the prompt decoder\'s '
                             f'tokens {int(decoder.embed_dim)}: use the same SAM 3 preset for '
                             'the source, the backbone and SAM3PromptDecoder')
        return 1 + int(self.geometry_encoder.cls_embed is not None)

    def forward(self, view: ReferenceView) -> Tensor:
        """(R, 2, D) exemplar tokens: one geometry-encoder call for all R boxes, each box a
        one-exemplar prompt on its own image's ``vision_features``."""
        feats = view.level(VISION_FEATURES_LEVEL, type(self).__name__)  # (B, D, h, w)
        rows = view.box_rows
        if not rows:
            return view.boxes.new_zeros(0, self.num_tokens([], view.decoder), feats.shape[1])
        from sam3.model.geometry_encoders import Prompt
        idx = torch.as_tensor(rows, device=feats.device)
        x = feats.index_select(0, idx)  # (R, D, h, w)
        h, w = x.shape[-2:]
        # the sine encoding depends on the shape only; cached by sam3 on the first device
        pos = self.image_pos(x[:1]).to(device=x.device, dtype=x.dtype).expand_as(x)
        boxes = bbox_xyxy_to_cxcywh(view.boxes.float() / view.input_size).to(x.dtype)
        r = len(rows)
        prompt = Prompt(box_embeddings=boxes[None],  # (1 box, R prompts, 4) sequence-first
                        box_mask=torch.zeros(r, 1, dtype=torch.bool, device=x.device),
                        box_labels=torch.ones(1, r, dtype=torch.long, device=x.device))
        with pinning_optional():
            tokens, _ = self.geometry_encoder(
                prompt, [x.flatten(2).permute(2, 0, 1)], [(h, w)],
                [pos.flatten(2).permute(2, 0, 1)])
        return tokens.transpose(0, 1)  # (R, 2, D): box token, CLS token
