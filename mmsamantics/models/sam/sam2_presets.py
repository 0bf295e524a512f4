"""Size presets of SAM 2 (``sam2`` package, Hiera image encoder) for the backbone and decoder.

The real presets copy ``sam2/configs/sam2.1/sam2.1_hiera_{t,s,b+,l}.yaml`` (Hiera's own
defaults filled in where a yaml leaves a field out) so the official SAM 2.1 checkpoints load
strictly. The decoder fields are the values ``SAM2Base._build_sam_heads`` hard-codes, and the
``dynamic_multimask_*`` fields are what ``build_sam2(apply_postprocessing=True)`` (the image
predictor's default) adds. ``tiny`` is a random-weight preset for tests and the toy world
(256 px).
"""
from typing import Dict

SAM2_CHECKPOINT_URLS = {
    'hiera_t': 'https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_tiny.pt',
    'hiera_s': 'https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_small.pt',
    'hiera_b+':
        'https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_base_plus.pt',
    'hiera_l': 'https://dl.fbaipublicfiles.com/segment_anything_2/092824/sam2.1_hiera_large.pt',
}

_COMMON = dict(
    d_model=256,  # FpnNeck width = prompt / decoder width
    fpn_top_down_levels=(2, 3),  # FPN levels 0 and 1 use lateral features only
    fpn_interp_model='nearest',
    scalp=1,  # ImageEncoder drops the stride-32 FPN level
    image_size=1024,
    backbone_stride=16,
    directly_add_no_mem_embed=True,
    use_high_res_features=True,  # decoder uses the stride-4 and stride-8 FPN levels
    iou_prediction_use_sigmoid=True,
    pred_obj_scores=True,
    pred_obj_scores_mlp=True,
    use_multimask_token_for_obj_ptr=True,
    dynamic_multimask_via_stability=True,
    dynamic_multimask_stability_delta=0.05,
    dynamic_multimask_stability_thresh=0.98,
    decoder_depth=2, decoder_mlp_dim=2048, decoder_num_heads=8, iou_head_hidden_dim=256)


def _hiera(embed_dim: int, num_heads: int, stages: tuple, global_att_blocks: tuple,
           window_spec: tuple, bkg: tuple) -> dict:
    return dict(embed_dim=embed_dim, num_heads=num_heads, stages=stages,
                global_att_blocks=global_att_blocks, window_spec=window_spec,
                window_pos_embed_bkg_spatial_size=bkg,
                backbone_channel_list=(8 * embed_dim, 4 * embed_dim, 2 * embed_dim, embed_dim))


SAM2_PRESETS: Dict[str, dict] = {
    'hiera_t': dict(_COMMON, **_hiera(96, 1, (1, 2, 7, 2), (5, 7, 9), (8, 4, 14, 7), (7, 7))),
    'hiera_s': dict(_COMMON, **_hiera(96, 1, (1, 2, 11, 2), (7, 10, 13), (8, 4, 14, 7),
                                      (7, 7))),
    'hiera_b+': dict(_COMMON, **_hiera(112, 2, (2, 3, 16, 3), (12, 16, 20), (8, 4, 14, 7),
                                       (14, 14))),
    'hiera_l': dict(_COMMON, **_hiera(144, 2, (2, 6, 36, 4), (23, 33, 43), (8, 4, 16, 8),
                                      (7, 7))),
    # 5 Hiera blocks (one global), width 64. The decoder keeps SAM2Base's hard-coded
    # depth/MLP/heads so sam2's own SAM2Base can serve as the reference in the tests.
    'tiny': dict(_COMMON, **_hiera(24, 1, (1, 1, 2, 1), (3,), (8, 4, 8, 4), (4, 4)),
                 d_model=64, image_size=256),
}


def get_sam2_preset(name: str, **overrides) -> dict:
    """A copy of SAM 2 preset ``name`` with ``overrides`` applied (clear error on a bad name)."""
    if name not in SAM2_PRESETS:
        raise KeyError(f'unknown SAM 2 preset {name!r}; choose one of {sorted(SAM2_PRESETS)}')
    cfg = dict(SAM2_PRESETS[name])
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise KeyError(f'unknown SAM 2 preset keys {sorted(unknown)}; known: {sorted(cfg)}')
    cfg.update(overrides)
    return cfg


def sam2_checkpoint_hint(name: str) -> str:
    """Where to get the checkpoint of preset ``name`` (appended to a missing-file error)."""
    url = SAM2_CHECKPOINT_URLS.get(name)
    if url is None:
        return (f'The SAM 2 {name} preset has no released weights: set checkpoint=None for '
                'random weights.')
    return (f'Download the official SAM 2.1 {name} weights ({url.rsplit("/", 1)[-1]}) from '
            f'{url} and point the config\'s `sam2_checkpoint` variable at the file '
            '(e.g. checkpoints/).')
