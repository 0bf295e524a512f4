"""Build SAM 3's image model (``sam3.model.sam3_image.Sam3Image``) from size presets.

The ``full`` preset is the released SAM 3 detector (``sam3.model_builder`` with its own
dimensions). The ``tiny`` preset assembles the same ``sam3`` classes with small widths and
depths so a CPU test runs in seconds; it has random weights and exists for tests only.

CPU: the ``full`` preset needs CUDA — ``sam3`` precomputes its decoder's box-position
coordinates and its position encodings on ``"cuda"`` when built for a fixed resolution, and
its box RoI pooling (``SequenceGeometryEncoder(boxes_pool=True)``) pins host memory. The
tiny ``Sam3Image`` passes no resolution (the caches fill lazily on the input's device) and
turns box pooling off (boxes enter by direct projection and position encoding only). The
vision backbone (:func:`build_sam3_vision_backbone`), the geometry encoder
(:func:`build_sam3_geometry_encoder`, with box pooling, under
:func:`~.cpu_compat.pinning_optional`) and the SAM 1-task heads
(:func:`build_sam3_sam_heads`) build and run on the CPU in every preset.

Imports: ``sam3.model_builder`` imports the video predictor too, which needs ``psutil``;
the tokenizer needs ``ftfy`` (and its ``wcwidth``) and ``regex``. ``sam3`` is installed
with ``--no-deps`` (its ``typing_extensions<4.16`` pin is not needed at import time).
"""
import gzip
import os.path as osp
from typing import Dict, Tuple

import torch.nn as nn

# The width every part of the tiny preset shares: SAM 3 uses one d_model (256) for the
# neck, encoder, decoder, geometry encoder and heads.
SAM3_PRESETS: Dict[str, dict] = {
    'full': dict(resolution=1008),
    'tiny': dict(resolution=112, d_model=32, vit_dim=32, vit_depth=2, vit_heads=2,
                 text_width=32, text_layers=1, text_heads=2, layers=1, heads=2,
                 ffn=64, num_queries=20),
    # the toy world's SAM 3 (224 px = a 16 x 16 patch grid; widths of the tiny SAM's
    # encoder (96) and prompt decoder (64)), trained by tools/misc/pretrain_toy_sam3.py
    'toy': dict(resolution=224, d_model=64, vit_dim=96, vit_depth=4, vit_heads=3,
                text_width=64, text_layers=2, text_heads=2, layers=1, heads=2,
                ffn=128, num_queries=20),
}
# SAM 3's SAM 1-task (interactive) prompt decoder, ``Sam3TrackerBase._build_sam_heads``:
# a SAM 2 decoder at d_model, stride 14, two-way depth 2; the tiny presets scale it down
SAM3_TRACKER_HEADS: Dict[str, dict] = {
    'full': dict(depth=2, mlp_dim=2048, num_heads=8, iou_hidden=256),
    'tiny': dict(depth=2, mlp_dim=64, num_heads=2, iou_hidden=32),
    'toy': dict(depth=2, mlp_dim=256, num_heads=2, iou_hidden=64),
}
PATCH_SIZE = 14  # SAM 3's ViT patch: the image embedding side is resolution / 14
BPE_URL = ('https://github.com/facebookresearch/sam3/blob/main/assets/'
           'bpe_simple_vocab_16e6.txt.gz')
CKPT_URL = 'https://huggingface.co/facebook/sam3 (sam3.pt, gated: accept the licence)'


def check_bpe_path(bpe_path: str) -> None:
    """Refuse a missing tokenizer vocabulary with where to get it."""
    if not bpe_path or not osp.isfile(bpe_path):
        raise FileNotFoundError(
            f'SAM 3 tokenizer vocabulary not found at {bpe_path!r} (the sam3 wheel does not '
            f'ship it; even exemplar-only prompts encode the text "visual"): download '
            f'{BPE_URL} and set bpe_path in the config to its local path')


def write_tiny_bpe(path: str) -> str:
    """Write a valid, tiny BPE vocabulary (header line, no merges) for tests.

    With no merges the tokenizer falls back to the 512 byte-level tokens plus
    start/end of text (514 ids); the tiny text encoder sizes its table from it.
    """
    with gzip.open(path, 'wt', encoding='utf-8') as fh:
        fh.write('#version: tiny')  # no trailing newline: an empty line is a merge
    return path


def _mha(dim: int, heads: int, batch_first: bool = False) -> nn.Module:
    from sam3.model.model_misc import MultiheadAttentionWrapper
    return MultiheadAttentionWrapper(num_heads=heads, dropout=0.0, embed_dim=dim,
                                     batch_first=batch_first)


def sam3_position_encoding(preset: str) -> nn.Module:
    """The sine position encoding of SAM 3's neck levels and geometry encoder (no weights;
    ``sam3.model_builder._create_position_encoding`` without the CUDA precompute)."""
    from sam3.model.position_encoding import PositionEmbeddingSine
    d = 256 if preset == 'full' else check_sam3_preset(preset)['d_model']
    return PositionEmbeddingSine(num_pos_feats=d, normalize=True)


def _tiny_vision(p: dict, interactive: bool = False) -> nn.Module:
    from sam3.model.necks import Sam3DualViTDetNeck
    from sam3.model.position_encoding import PositionEmbeddingSine
    from sam3.model.vitdet import ViT
    vit = ViT(img_size=p['resolution'], pretrain_img_size=p['resolution'], patch_size=14,
              embed_dim=p['vit_dim'], depth=p['vit_depth'], num_heads=p['vit_heads'],
              qkv_bias=True, use_abs_pos=True, tile_abs_pos=True,
              global_att_blocks=tuple(range(p['vit_depth'])), rel_pos_blocks=(),
              use_rope=True, use_interp_rope=True, window_size=4,
              pretrain_use_cls_token=True, retain_cls_token=False, ln_pre=True,
              bias_patch_embed=False, use_act_checkpoint=False)
    pos = PositionEmbeddingSine(num_pos_feats=p['d_model'], normalize=True)
    return Sam3DualViTDetNeck(trunk=vit, position_encoding=pos, d_model=p['d_model'],
                              scale_factors=[4.0, 2.0, 1.0, 0.5], add_sam2_neck=interactive)


def check_sam3_preset(preset: str) -> dict:
    """The fields of a known preset (a clear error names the known ones)."""
    if preset not in SAM3_PRESETS:
        raise KeyError(f'unknown SAM 3 preset {preset!r}: use one of {sorted(SAM3_PRESETS)}')
    return SAM3_PRESETS[preset]


def build_sam3_vision_backbone(preset: str, interactive: bool = False) -> nn.Module:
    """Build SAM 3's vision backbone alone (random weights): the Perception Encoder ViT and
    its simple-FPN neck, as ``Sam3Image.backbone.vision_backbone``.

    The ``full`` preset takes ``sam3.model_builder``'s own parts and dimensions. Unlike its
    ``_create_vision_backbone``, it does not precompute the position-encoding cache on
    ``"cuda"``: that cache fills lazily on the input's device with the same values, so the
    vision backbone alone builds and runs on the CPU. The SAM 2-style second neck
    (``sam2_convs``, only used by the interactive instance predictor) is left out.

    Args:
        preset: A key of :data:`SAM3_PRESETS`.

    Returns:
        ``sam3.model.necks.Sam3DualViTDetNeck`` (``trunk`` = ``sam3.model.vitdet.ViT``).
    """
    p = check_sam3_preset(preset)
    if preset == 'full':
        from sam3.model_builder import (_create_position_encoding, _create_vit_backbone,
                                        _create_vit_neck)
        return _create_vit_neck(_create_position_encoding(precompute_resolution=None),
                                _create_vit_backbone(), enable_inst_interactivity=interactive)
    return _tiny_vision(p, interactive)


def _tiny_backbone(p: dict, bpe_path: str) -> nn.Module:
    from sam3.model.text_encoder_ve import VETextEncoder
    from sam3.model.tokenizer_ve import SimpleTokenizer
    from sam3.model.vl_combiner import SAM3VLBackbone
    visual = _tiny_vision(p)  # first: the random weights are drawn in sam3's build order
    tokenizer = SimpleTokenizer(bpe_path=bpe_path)
    text = VETextEncoder(d_model=p['d_model'], tokenizer=tokenizer, width=p['text_width'],
                         heads=p['text_heads'], layers=p['text_layers'],
                         vocab_size=tokenizer.vocab_size, use_act_checkpoint=False)
    return SAM3VLBackbone(visual=visual, text=text, scalp=1)


def _enc_layer(p: dict, geometry: bool) -> nn.Module:
    from sam3.model.encoder import TransformerEncoderLayer
    d, h = p['d_model'], p['heads']
    return TransformerEncoderLayer(
        activation='relu', d_model=d, dim_feedforward=p['ffn'], dropout=0.0,
        pos_enc_at_attn=not geometry, pos_enc_at_cross_attn_keys=geometry,
        pos_enc_at_cross_attn_queries=False, pre_norm=True,
        self_attention=_mha(d, h, batch_first=not geometry),
        cross_attention=_mha(d, h, batch_first=not geometry))


def _tiny_transformer(p: dict) -> nn.Module:
    from sam3.model.decoder import TransformerDecoder, TransformerDecoderLayer
    from sam3.model.encoder import TransformerEncoderFusion
    from sam3.model.model_misc import TransformerWrapper
    d = p['d_model']
    encoder = TransformerEncoderFusion(
        layer=_enc_layer(p, geometry=False), num_layers=p['layers'], d_model=d,
        num_feature_levels=1, frozen=False, use_act_checkpoint=False,
        add_pooled_text_to_img_feat=False, pool_text_with_mask=True)
    dec_layer = TransformerDecoderLayer(
        activation='relu', d_model=d, dim_feedforward=p['ffn'], dropout=0.0,
        cross_attention=_mha(d, p['heads']), n_heads=p['heads'],
        use_text_cross_attention=True)
    decoder = TransformerDecoder(
        layer=dec_layer, num_layers=p['layers'], num_queries=p['num_queries'],
        return_intermediate=True, box_refine=True, num_o2m_queries=0, dac=True,
        boxRPB='log', d_model=d, frozen=False, interaction_layer=None,
        dac_use_selfatt_ln=True, resolution=None, stride=None,
        use_act_checkpoint=False, presence_token=True)
    return TransformerWrapper(encoder=encoder, decoder=decoder, d_model=d)


def _tiny_geometry(p: dict, boxes_pool: bool) -> nn.Module:
    from sam3.model.geometry_encoders import SequenceGeometryEncoder
    from sam3.model.position_encoding import PositionEmbeddingSine
    d = p['d_model']
    return SequenceGeometryEncoder(
        pos_enc=PositionEmbeddingSine(num_pos_feats=d, normalize=True),
        encode_boxes_as_points=False, points_direct_project=True, points_pool=True,
        points_pos_enc=True, boxes_direct_project=True, boxes_pool=boxes_pool,
        boxes_pos_enc=True, d_model=d, num_layers=p['layers'],
        layer=_enc_layer(p, geometry=True), use_act_ckpt=False, add_cls=True,
        add_post_encode_proj=True)


def build_sam3_geometry_encoder(preset: str) -> nn.Module:
    """SAM 3's geometry-and-exemplar encoder (``Sam3Image.geometry_encoder``, random
    weights): a box becomes a token from its projected coordinates, its RoI-pooled image
    features and its position encoding, followed by a CLS token; both attend to the image
    (Sapkota et al., "The SAM2-to-SAM3 gap", §3). The ``full`` preset is
    ``sam3.model_builder``'s own; the small presets pool boxes too (as the released one)."""
    p = check_sam3_preset(preset)
    if preset == 'full':
        from sam3.model_builder import _create_geometry_encoder
        return _create_geometry_encoder()
    return _tiny_geometry(p, boxes_pool=True)


def build_sam3_sam_heads(preset: str) -> Tuple[nn.Module, nn.Module]:
    """SAM 3's SAM 1-task prompt encoder and mask decoder (random weights), built as
    ``sam3.model.sam3_tracker_base.Sam3TrackerBase._build_sam_heads`` and
    ``sam3.model_builder.build_tracker`` build them (a SAM 2 decoder with high-res features,
    object scores and dynamic multimask selection), from ``sam3.sam``'s classes."""
    from sam3.sam.mask_decoder import MaskDecoder
    from sam3.sam.prompt_encoder import PromptEncoder
    from sam3.sam.transformer import TwoWayTransformer
    p, h = check_sam3_preset(preset), SAM3_TRACKER_HEADS[preset]
    d = 256 if preset == 'full' else p['d_model']
    side = p['resolution']
    prompt_encoder = PromptEncoder(embed_dim=d, image_embedding_size=(side // PATCH_SIZE,) * 2,
                                   input_image_size=(side, side), mask_in_chans=16)
    mask_decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=h['depth'], embedding_dim=d, mlp_dim=h['mlp_dim'],
                                      num_heads=h['num_heads']),
        transformer_dim=d, iou_head_depth=3, iou_head_hidden_dim=h['iou_hidden'],
        use_high_res_features=True, iou_prediction_use_sigmoid=True, pred_obj_scores=True,
        pred_obj_scores_mlp=True, use_multimask_token_for_obj_ptr=True,
        dynamic_multimask_via_stability=True, dynamic_multimask_stability_delta=0.05,
        dynamic_multimask_stability_thresh=0.98)
    return prompt_encoder, mask_decoder


def _tiny_heads(p: dict) -> dict:
    from sam3.model.maskformer_segmentation import PixelDecoder, UniversalSegmentationHead
    from sam3.model.model_misc import MLP, DotProductScoring
    d = p['d_model']
    prompt_mlp = MLP(input_dim=d, hidden_dim=p['ffn'], output_dim=d, num_layers=2,
                     dropout=0.0, residual=True, out_norm=nn.LayerNorm(d))
    seg = UniversalSegmentationHead(
        hidden_dim=d, upsampling_stages=3, aux_masks=False, presence_head=False,
        dot_product_scorer=None, act_ckpt=False, cross_attend_prompt=_mha(d, p['heads']),
        pixel_decoder=PixelDecoder(num_upsampling_stages=3, interpolation_mode='nearest',
                                   hidden_dim=d))
    # boxes_pool=False: the full detector of build_sam3_image runs on CUDA only; here the
    # tiny one keeps its recorded CPU behaviour (boxes by projection and position only)
    geometry = _tiny_geometry(p, boxes_pool=False)
    return dict(segmentation_head=seg, input_geometry_encoder=geometry,
                dot_prod_scoring=DotProductScoring(d_model=d, d_proj=d,
                                                   prompt_mlp=prompt_mlp))


def build_sam3_image(preset: str, bpe_path: str) -> nn.Module:
    """Build an eval-mode ``Sam3Image`` (random weights) of a size preset.

    Args:
        preset: A key of :data:`SAM3_PRESETS`.
        bpe_path: Local path of the tokenizer vocabulary (``bpe_simple_vocab_16e6.txt.gz``).

    Returns:
        ``sam3.model.sam3_image.Sam3Image`` without the SAM 1 interactive predictor.
    """
    check_sam3_preset(preset)
    check_bpe_path(bpe_path)
    if preset == 'full':
        import torch
        if not torch.cuda.is_available():
            raise RuntimeError('the full SAM 3 preset needs a CUDA GPU: sam3 builds its '
                               'decoder and position-encoding caches on "cuda" (the tiny '
                               'preset runs on CPU)')
        from sam3.model_builder import build_sam3_image_model
        return build_sam3_image_model(bpe_path=bpe_path, device='cpu', eval_mode=True,
                                      checkpoint_path=None, load_from_HF=False)
    from sam3.model.sam3_image import Sam3Image
    p = SAM3_PRESETS[preset]
    model = Sam3Image(backbone=_tiny_backbone(p, bpe_path), transformer=_tiny_transformer(p),
                      num_feature_levels=1, o2m_mask_predict=True, use_instance_query=False,
                      multimask_output=True, inst_interactive_predictor=None, matcher=None,
                      **_tiny_heads(p))
    _init_uninitialised(model)
    return model.eval()


def _init_uninitialised(model: nn.Module) -> None:
    """Fill the parameters ``sam3`` allocates with ``torch.empty`` (its released weights
    overwrite them): random memory would give NaNs in a random-weight model."""
    for name, param in model.named_parameters():
        if name.endswith(('positional_embedding', 'text_projection', 'level_embed')):
            nn.init.normal_(param, std=0.02)
