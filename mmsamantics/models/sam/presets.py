"""Size presets of SAM (segment-anything) used by the backbone and the prompt decoder.

The real presets match ``segment_anything.build_sam`` exactly so the official checkpoints
load strictly. ``tiny`` is a random-weight preset for tests and the toy world (256 px).
"""
from typing import Dict

SAM_CHECKPOINT_URLS = {
    'vit_b': 'https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth',
    'vit_l': 'https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth',
    'vit_h': 'https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth',
}

_DECODER = dict(prompt_embed_dim=256, decoder_depth=2, decoder_mlp_dim=2048,
                decoder_num_heads=8, iou_head_hidden_dim=256)

SAM_PRESETS: Dict[str, dict] = {
    'vit_b': dict(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11),
                  img_size=1024, patch_size=16, window_size=14, **_DECODER),
    'vit_l': dict(embed_dim=1024, depth=24, num_heads=16,
                  global_attn_indexes=(5, 11, 17, 23), img_size=1024, patch_size=16,
                  window_size=14, **_DECODER),
    'vit_h': dict(embed_dim=1280, depth=32, num_heads=16,
                  global_attn_indexes=(7, 15, 23, 31), img_size=1024, patch_size=16,
                  window_size=14, **_DECODER),
    # 4 blocks, 2 of them global: the toy detector uses 2 feature levels (half the cost of
    # 4 identical-resolution levels on a CPU); pass out_indices=(0, 1, 2, 3) for 4.
    'tiny': dict(embed_dim=96, depth=4, num_heads=3, global_attn_indexes=(1, 3),
                 img_size=256, patch_size=16, window_size=8, prompt_embed_dim=64,
                 decoder_depth=2, decoder_mlp_dim=256, decoder_num_heads=4,
                 iou_head_hidden_dim=64),
}


def get_preset(name: str, **overrides) -> dict:
    """A copy of preset ``name`` with ``overrides`` applied (clear error on a bad name)."""
    if name not in SAM_PRESETS:
        raise KeyError(f'unknown SAM preset {name!r}; choose one of {sorted(SAM_PRESETS)}')
    cfg = dict(SAM_PRESETS[name])
    unknown = set(overrides) - set(cfg)
    if unknown:
        raise KeyError(f'unknown SAM preset keys {sorted(unknown)}; known: {sorted(cfg)}')
    cfg.update(overrides)
    return cfg


def checkpoint_hint(name: str) -> str:
    url = SAM_CHECKPOINT_URLS.get(name)
    if url is None:
        return ('The tiny preset has no released weights: create them with '
                '`python tools/misc/pretrain_toy_sam.py` (class-agnostic pretraining on the toy '
                'world), or set checkpoint=None for random weights.')
    return (f'Download the official SAM {name} weights from {url} and point the config\'s '
            '`sam_checkpoint` variable at the file (e.g. checkpoints/).')
