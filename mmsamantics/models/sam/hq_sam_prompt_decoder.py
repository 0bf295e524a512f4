"""Frozen HQ-SAM prompt encoder + mask decoder, the HQ-SAM counterpart of ``SAMPromptDecoder``.

HQ-SAM (Ke et al., "Segment Anything in High Quality", NeurIPS 2023; package
``segment-anything-hq``, module ``segment_anything_hq``, MIT) adds to SAM's frozen decoder one
learned output token (the HQ token) with its own MLP, and an HQ feature fused from the
embedding and an early ViT feature. The authors of InSAM-DETR took the reference tokens from
it: SAM's 4 mask tokens + the HQ token = 5 x 256 (Espinosa et al., §5.2 and the authors' code).

Shape shorthand: N prompts (boxes), D prompt width (256; tiny 64), h = w = S / 16 the
embedding side, C the ViT width (768 / 1024 / 1280 / 96), M = 5 mask tokens (SAM's
single-mask token, its 3 multimask tokens, then the HQ token).

The embedding comes from :class:`SAMImageEncoder` with ``hq_interm=True``: the tuple
``(embedding (B, D, h, w), interm (B, h, w, C))``, ``interm`` being HQ-SAM's
``interm_embeddings[0]`` (first global-attention block output, channels-last).
"""
from typing import Optional, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import Tensor

from mmdet.registry import MODELS
from ...utils.checkpoint import load_state_dict_file, load_strict
from ...utils.frozen import freeze
from .presets import get_preset

HQEmbedding = Tuple[Tensor, Tensor]

# The README of segment-anything-hq links Google-Drive files for vit_b/l/h and names this
# Hugging Face repository as the alternative download (same file names).
HQ_SAM_CHECKPOINT_URLS = {
    'vit_b': 'https://huggingface.co/lkeab/hq-sam/resolve/main/sam_hq_vit_b.pth',
    'vit_l': 'https://huggingface.co/lkeab/hq-sam/resolve/main/sam_hq_vit_l.pth',
    'vit_h': 'https://huggingface.co/lkeab/hq-sam/resolve/main/sam_hq_vit_h.pth',
}

# Decoder weights HQ-SAM adds to SAM's (names in MaskDecoderHQ): a plain SAM checkpoint lacks them.
_HQ_KEYS = ('hf_token', 'hf_mlp', 'compress_vit_feat', 'embedding_encoder',
            'embedding_maskfeature')


def hq_checkpoint_hint(name: str) -> str:
    """Where to download the HQ-SAM checkpoint of preset ``name``."""
    url = HQ_SAM_CHECKPOINT_URLS.get(name)
    if url is None:
        return (f'HQ-SAM has no released weights for the {name!r} preset: make the toy ones '
                'with `python tools/misc/pretrain_toy_hq_sam.py` (after '
                'tools/misc/pretrain_toy_sam.py), or set checkpoint=None for random weights.')
    return (f'Download the official HQ-SAM {name} weights from {url} (or the links in the '
            'segment-anything-hq README) and point the config\'s `sam_checkpoint` variable '
            'at the file (e.g. checkpoints/).')


@MODELS.register_module()
class HQSAMPromptDecoder(BaseModule):
    """HQ-SAM's ``PromptEncoder`` and ``MaskDecoderHQ`` (from ``segment_anything_hq``), frozen.

    Same interface as :class:`SAMPromptDecoder`; the masks equal ``segment_anything_hq``'s
    ``SamPredictor.predict(box=...)`` for the same weights.

    Args:
        preset: SAM size preset (``vit_b`` / ``vit_l`` / ``vit_h`` / ``tiny``), as the
            backbone's; HQ-SAM's ``vit_dim`` is the preset's ViT width (768 / 1024 / 1280 / 96).
        checkpoint: local HQ-SAM checkpoint (``sam_hq_vit_b.pth`` ...); ``prompt_encoder.*`` and
            ``mask_decoder.*`` keys (incl. the HQ ones) are loaded strictly. None = random
            weights.
        hq_token_only: the mask is the HQ token's alone; False (default, as HQ-SAM's
            ``SamPredictor.predict`` and ``Sam.forward``, and what its README advises for
            images with several objects such as COCO) sums the logits of SAM's selected mask
            and of the HQ mask.
        preset_overrides: change preset fields (must match the backbone's).
    """

    def __init__(self,
                 preset: str = 'vit_b',
                 checkpoint: Optional[str] = None,
                 hq_token_only: bool = False,
                 preset_overrides: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        p = get_preset(preset, **(preset_overrides or {}))
        state = (None if checkpoint is None
                 else load_state_dict_file(checkpoint, hq_checkpoint_hint(preset)))
        # Imported here, not at module level: importing segment_anything_hq also imports its
        # TinyViT, which re-registers timm's tiny_vit_* models with its own classes.
        from segment_anything_hq.modeling import MaskDecoderHQ, PromptEncoder, TwoWayTransformer
        d = p['prompt_embed_dim']
        side = p['img_size'] // p['patch_size']
        self.img_size = p['img_size']
        self.embed_dim = d
        self.hq_token_only = hq_token_only
        self.prompt_encoder = PromptEncoder(
            embed_dim=d, image_embedding_size=(side, side),
            input_image_size=(p['img_size'], p['img_size']), mask_in_chans=16)
        self.mask_decoder = MaskDecoderHQ(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=p['decoder_depth'], embedding_dim=d,
                                          mlp_dim=p['decoder_mlp_dim'],
                                          num_heads=p['decoder_num_heads']),
            transformer_dim=d, iou_head_depth=3, iou_head_hidden_dim=p['iou_head_hidden_dim'],
            vit_dim=p['embed_dim'])
        if state is not None:
            load_strict(self.prompt_encoder, state, 'prompt_encoder.', source=checkpoint)
            try:
                load_strict(self.mask_decoder, state, 'mask_decoder.', source=checkpoint)
            except RuntimeError as e:
                if not any(k.startswith(f'mask_decoder.{h}.') for k in state for h in _HQ_KEYS):
                    raise RuntimeError(f'{e} HQSAMPromptDecoder needs an HQ-SAM checkpoint; '
                                       f'this one has no HQ weights ({", ".join(_HQ_KEYS)}): '
                                       f'is it plain SAM\'s? {hq_checkpoint_hint(preset)}') from e
                raise
        freeze(self)

    @property
    def num_mask_tokens(self) -> int:
        """M, the number of output mask tokens (5: SAM's 4 + the HQ token)."""
        return self.mask_decoder.num_mask_tokens

    def train(self, mode: bool = True) -> 'HQSAMPromptDecoder':
        return super().train(False)  # frozen: always eval

    @staticmethod
    def _split(embedding: Union[HQEmbedding, Tensor]) -> HQEmbedding:
        if isinstance(embedding, Tensor):
            raise ValueError('HQSAMPromptDecoder needs (embedding, interm) from '
                             'SAMImageEncoder(hq_interm=True), got a single tensor')
        image_embed, interm = embedding
        return image_embed, interm

    @torch.no_grad()
    def predict_masks(self, image_embedding: HQEmbedding, boxes: Tensor,
                      multimask_output: bool = False) -> Tuple[Tensor, Tensor]:
        """Masks for N boxes on ONE image, as HQ-SAM's ``SamPredictor.predict(box=...)``.

        Args:
            image_embedding: ``(embedding (1, D, h, w), interm (1, h, w, C))`` of one image.
            boxes: (N, 4) xyxy boxes in model-input pixels.
            multimask_output: use the best of SAM's 3 multimask outputs (by predicted IoU)
                instead of its single-mask output; HQ-SAM returns one mask either way.

        Returns:
            (low_res_logits (N, 1, 4h, 4w), iou_predictions (N, 1)); the IoU is that of SAM's
            selected mask (the HQ token has no IoU prediction).
        """
        image_embed, interm = self._split(image_embedding)
        sparse, dense = self.prompt_encoder(points=None, boxes=boxes, masks=None)
        return self.mask_decoder(
            image_embeddings=image_embed,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
            hq_token_only=self.hq_token_only,
            interm_embeddings=(interm,))  # it reads interm_embeddings[0]

    @torch.no_grad()
    def mask_tokens(self, image_embeddings: Union[HQEmbedding, Tensor],
                    boxes: Tensor) -> Tensor:
        """The decoder's output mask tokens for one box per embedding (reference tokens).

        Same token sequence as ``MaskDecoderHQ.predict_masks`` (IoU token, SAM's 4 mask
        tokens, the HQ token, then the prompt tokens), with one image embedding per box;
        only the two-way transformer runs: the early ViT feature enters the mask upscaling
        alone, so it is not needed (a bare (N, D, h, w) embedding is accepted too).

        Args:
            image_embeddings: ``(embedding (N, D, h, w), interm (N, h, w, C))`` of each box's
                image.
            boxes: (N, 4) xyxy boxes in model-input pixels.

        Returns:
            (N, 5, D) output tokens: SAM's 4 mask tokens then the HQ token (IoU token dropped).
        """
        image_embed = image_embeddings if isinstance(image_embeddings, Tensor) \
            else image_embeddings[0]
        if image_embed.shape[0] != boxes.shape[0]:
            raise ValueError(f'{image_embed.shape[0]} embeddings for {boxes.shape[0]} boxes')
        md = self.mask_decoder
        sparse, dense = self.prompt_encoder(points=None, boxes=boxes, masks=None)
        out_tokens = torch.cat([md.iou_token.weight, md.mask_tokens.weight, md.hf_token.weight])
        tokens = torch.cat([out_tokens.unsqueeze(0).expand(len(boxes), -1, -1), sparse], 1)
        pos = self.prompt_encoder.get_dense_pe().expand(len(boxes), -1, -1, -1)
        hs, _ = md.transformer(image_embed + dense, pos, tokens)
        return hs[:, 1:1 + md.num_mask_tokens]
