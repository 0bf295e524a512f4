"""Test helpers for the authors' checkpoints: tiny models with random SAM weights, and a
model's parts in the module layout of the authors' ``RefSAMDetector``, whose state dict has
their key names by construction."""
import os.path as osp

from mmengine.config import Config

from helpers import REPO

HQ_TOY_CONFIG = osp.join(REPO, 'configs', 'insam_detr',
                         'insam-detr_hq-sam-tiny_1xb4-12e_toy-world.py')


def random_sam_config(folder: str, base: str = HQ_TOY_CONFIG,
                      authors_conventions: bool = True) -> str:
    """A config file in ``folder``: ``base`` with random SAM weights (no SAM file read) and,
    by default, the authors' input conventions (``data_preprocessor.authors_conventions``)."""
    path = osp.join(folder, f'{authors_conventions:d}_{osp.basename(base)}')
    with open(path, 'w') as f:
        f.write(f'_base_ = {base!r}\n'
                f'model = dict(data_preprocessor=dict(authors_conventions={authors_conventions}),\n'
                '             backbone=dict(checkpoint=None),\n'
                '             mask_head=dict(decoder=dict(checkpoint=None)))\n')
    return path


def built_model(config: str, seed: int = 0):
    """The model of ``config``, built with ``seed`` and initialised, in eval mode."""
    import torch
    from mmdet.registry import MODELS
    from mmsamantics.utils.quiet_logs import quiet_logs
    torch.manual_seed(seed)
    with quiet_logs():
        model = MODELS.build(Config.fromfile(config).model)
        model.init_weights()
    return model.eval()


def authors_layout(model, reference_cache=None):
    """``model``'s parts in the attribute layout of the authors' ``RefSAMDetector``
    (miquel-espinosa/samantics): its ``state_dict()`` has their key names by construction
    (``sam.image_encoder.*``, ``ref_tokens_fuser.mlp.*``, ``level_embed``...), plus the
    ``query_cache`` / ``label_cache`` buffers of their precomputed-reference modes when
    ``reference_cache`` = (tokens (N, T, D), labels (N, 1)) is given."""
    from torch import nn
    theirs, sam, fuser = nn.Module(), nn.Module(), nn.Module()
    theirs.level_embed = model.level_embed  # their own parameter, then their buffers
    if reference_cache is not None:
        theirs.register_buffer('query_cache', reference_cache[0])
        theirs.register_buffer('label_cache', reference_cache[1])
    sam.image_encoder = model.backbone.encoder
    sam.prompt_encoder = model.mask_head.decoder.prompt_encoder
    sam.mask_decoder = model.mask_head.decoder.mask_decoder
    fuser.mlp = model.token_merge.mlp
    for name, part in (('sam', sam), ('neck', model.neck), ('bbox_head', model.bbox_head),
                       ('encoder', model.encoder), ('decoder', model.decoder),
                       ('query_embedding', model.query_embedding),
                       ('reference_points_fc', model.reference_points_fc),
                       ('ref_tokens_fuser', fuser)):
        setattr(theirs, name, part)
    return theirs
