"""Convert an InSAM-DETR checkpoint of the authors' code to this package's, or back.

The authors' code (miquel-espinosa/samantics, ``RefSAMDetector``) and :class:`InSAMDETR`
compute the same model; only the parameter names differ (``sam.image_encoder.*`` is
``backbone.encoder.*``, ``ref_tokens_fuser.mlp.*`` is ``token_merge.mlp.*``, ...: ``KEY_MAP``).
A model trained there predicts here what it predicts there once the authors' input
conventions are switched on (``data_preprocessor.authors_conventions=True``, the ``_authors``
configs; docs/insam_detr.md).

    # theirs -> ours (checked key by key against the config's model)
    python tools/model_converters/samantics_to_mmsam.py epoch_50.pth insam_detr_authors.pth \
        --config configs/insam_detr/insam-detr_hq-sam-vit-b_16xb3-50e_coco_authors.py
    # ours -> theirs
    python tools/model_converters/samantics_to_mmsam.py insam_detr_authors.pth epoch_50.pth \
        --reverse

Their checkpoints are mmengine's (``meta``, ``state_dict``, and from training the optimizer,
schedulers and message hub); only ``meta`` and the weights are converted (an optimizer state
is tied to the order of the parameters it was made for). A checkpoint saved in their
precomputed-reference modes also holds ``query_cache`` (N, T, D) tokens of N references and
``label_cache`` (N, 1) their COCO class indices: those become a reference bank (``--bank``,
with ``--config`` for the model's signature), the one bank format of this package, read by
``tools/infer.py --bank``; ``--reverse --bank`` puts a bank back into the buffers.
"""
import argparse
import os
import os.path as osp
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from mmsamantics.datasets import split_classes
from mmsamantics.structures.reference_bank import load_reference_bank
from mmsamantics.utils.checkpoint import format_keys, load_strict

# (theirs, ours): a name ending in '.' renames every key under it, any other an exact key;
# in the order of their state dict (their own parameter, their buffers, then their modules
# as RefSAMDetector registers them)
KEY_MAP: Tuple[Tuple[str, str], ...] = (
    ('level_embed', 'level_embed'),
    ('sam.image_encoder.', 'backbone.encoder.'),
    ('sam.prompt_encoder.', 'mask_head.decoder.prompt_encoder.'),
    ('sam.mask_decoder.', 'mask_head.decoder.mask_decoder.'),
    ('neck.', 'neck.'),
    ('bbox_head.', 'bbox_head.'),
    ('encoder.', 'encoder.'),
    ('decoder.', 'decoder.'),
    ('query_embedding.weight', 'query_embedding.weight'),
    ('reference_points_fc.', 'reference_points_fc.'),
    ('ref_tokens_fuser.mlp.', 'token_merge.mlp.'),
)
# the order of the same parts in InSAMDETR's state dict
OUR_ORDER = ('level_embed', 'backbone.encoder.', 'neck.', 'bbox_head.', 'encoder.', 'decoder.',
             'query_embedding.weight', 'reference_points_fc.', 'token_merge.mlp.',
             'mask_head.decoder.prompt_encoder.', 'mask_head.decoder.mask_decoder.')
# their precomputed-reference buffers (modes 'compute_embeds' / 'eval_embeds')
QUERY_CACHE, LABEL_CACHE = 'query_cache', 'label_cache'
BANK_KEY = 'samantics-{:05d}'  # key of reference i of their buffers in a bank


def rename(state: Dict[str, Tensor], reverse: bool = False) -> 'OrderedDict[str, Tensor]':
    """The state dict under the other side's names and in its order (theirs -> ours; ours
    -> theirs with ``reverse``), holding the same tensors (no copy).

    Raises:
        KeyError: keys no rule of ``KEY_MAP`` maps (listed), or families of ``KEY_MAP``
            with no key (the checkpoint is not a whole InSAM-DETR).
    """
    rules = [(b, a) if reverse else (a, b) for a, b in KEY_MAP]
    order = [a for a, _ in KEY_MAP] if reverse else list(OUR_ORDER)
    placed: List[Tuple[int, str, Tensor]] = []
    unknown, seen = [], set()
    for key, value in state.items():
        for src, dst in rules:
            if key == src or (src.endswith('.') and key.startswith(src)):
                placed.append((order.index(dst), dst + key[len(src):], value))
                seen.add(src)
                break
        else:
            unknown.append(key)
    if unknown and reverse:
        raise KeyError(f'keys with no counterpart in the authors\' model: '
                       f'{format_keys(unknown)}; only the paper\'s InSAM-DETR converts '
                       '(SAM or HQ-SAM mask tokens, the plain DETR head)')
    if unknown:
        raise KeyError(f'keys that are not parameters of the authors\' RefSAMDetector: '
                       f'{format_keys(unknown)}; is it a checkpoint of their InSAM-DETR?')
    missing = [src + ('*' if src.endswith('.') else '') for src, _ in rules if src not in seen]
    if missing:
        model = 'InSAMDETR' if reverse else 'the authors\' RefSAMDetector'
        raise KeyError(f'the checkpoint lacks parts of {model}: no {format_keys(missing)}')
    # the other side's order of the parts; within a part, its module's (the same on both)
    placed.sort(key=lambda p: p[0])
    return OrderedDict((k, v) for _, k, v in placed)


def read_checkpoint(path: str) -> dict:
    """An mmengine checkpoint (``state_dict`` + ``meta`` ...) or a bare state dict, read with
    ``weights_only=True`` (this package allows mmengine's message hub and numpy values)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path!r}')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for a foreign file
        raise ValueError(f'could not read {path!r} as a checkpoint of tensors: {e}') from None
    if isinstance(ckpt, dict) and isinstance(ckpt.get('state_dict'), dict):
        return ckpt
    if isinstance(ckpt, dict) and ckpt and all(isinstance(v, Tensor) for v in ckpt.values()):
        return dict(state_dict=ckpt)
    raise ValueError(f'{path!r} holds neither a state_dict nor a dict of tensors')


def check_against_config(state: Dict[str, Tensor], config: str):
    """The config's model (built without its SAM files: the weights are ``state``'s) with
    ``state`` loaded strictly: every missing or unexpected key and shape mismatch is named
    (an HQ-SAM checkpoint needs an HQ-SAM config, e.g. the ``_authors`` one)."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    from mmsamantics.utils.config_paths import load_config
    cfg = load_config(config)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    cfg.merge_from_dict({'model.backbone.checkpoint': None,
                         'model.mask_head.decoder.checkpoint': None})
    model = MODELS.build(cfg.model)
    load_strict(model, state, source=f'the converted checkpoint (for {config})')
    return model.eval()


def buffers_to_bank(query: Tensor, labels: Tensor, model, path: str, source: str) -> int:
    """Write their ``query_cache`` (N, T, D) / ``label_cache`` (N, 1) as a reference bank of
    ``model`` (its signature and kind); returns N. Reference i gets the key ``BANK_KEY``
    and the name of COCO class ``label_cache[i]`` (their code indexes COCO's 80 classes)."""
    classes = split_classes('coco')
    idx = labels.reshape(-1)
    if query.ndim != 3 or len(idx) != len(query):
        raise ValueError(f'{QUERY_CACHE} {tuple(query.shape)} and {LABEL_CACHE} '
                         f'{tuple(labels.shape)} are not (N, T, D) tokens and (N, 1) labels')
    if not torch.equal(idx, idx.round()) or idx.min() < 0 or idx.max() >= len(classes):
        raise ValueError(f'{LABEL_CACHE} holds values other than COCO class indices 0-79')
    want = tuple(model.reference_feature_shape)
    if tuple(query.shape[1:]) != want:
        raise ValueError(f'{QUERY_CACHE} holds ({tuple(query.shape[1:])}) tokens per reference; '
                         f'the config\'s model takes {want}')
    model.save_bank(path, [BANK_KEY.format(i) for i in range(len(query))],
                    [classes[int(i)] for i in idx], query,
                    meta=dict(classes=classes, source=source, label_dtype=str(labels.dtype)))
    return len(query)


def bank_to_buffers(path: str) -> Tuple[Tensor, Tensor]:
    """A reference bank's tokens and class names as their (N, T, D) ``query_cache`` and
    (N, 1) ``label_cache`` (indices of the bank's ``meta.classes``, in its dtype)."""
    bank = load_reference_bank(path)
    meta = bank.get('meta') or {}
    classes, tokens = meta.get('classes'), bank['tokens']
    if not classes or not isinstance(tokens, Tensor) or tokens.ndim != 3:
        raise ValueError(f'{path!r} is not a bank of InSAM-DETR tokens (R, T, D) with its class '
                         'list (meta.classes): make it with tools/misc/encode_references.py')
    unknown = sorted(set(bank['labels']) - set(classes))
    if unknown:
        raise ValueError(f'{path!r} has references of classes not in its meta.classes: '
                         f'{format_keys(unknown)}')
    dtype = getattr(torch, str(meta.get('label_dtype', 'torch.float32')).split('.')[-1])
    labels = torch.tensor([[classes.index(n)] for n in bank['labels']], dtype=dtype)
    return tokens, labels.reshape(len(tokens), 1)


def to_ours(ckpt: dict, src: str, config: Optional[str], bank: Optional[str]) -> dict:
    """Their checkpoint -> ours (``meta`` keeps theirs as ``source_meta``)."""
    state = dict(ckpt['state_dict'])
    query, labels = state.pop(QUERY_CACHE, None), state.pop(LABEL_CACHE, None)
    if (query is None) != (labels is None):
        raise KeyError(f'{src!r} has only one of {QUERY_CACHE} and {LABEL_CACHE}')
    if query is not None and not (bank and config):
        raise ValueError(f'{src!r} holds the tokens of {len(query)} precomputed references '
                         f'({QUERY_CACHE}, {LABEL_CACHE}): give --bank BANK.pth and --config '
                         'CONFIG to keep them as a reference bank')
    if bank and query is None:
        raise ValueError(f'--bank: {src!r} holds no precomputed references ({QUERY_CACHE})')
    ours = rename(state)
    if config:
        model = check_against_config(ours, config)
        if query is not None:
            n = buffers_to_bank(query, labels, model, bank, osp.basename(src))
            print(f'{n} precomputed references -> reference bank {bank}')
    meta = dict(converted_from=osp.basename(src), source='miquel-espinosa/samantics',
                source_meta=ckpt.get('meta'))
    return dict(meta=meta, state_dict=ours)


def to_theirs(ckpt: dict, src: str, bank: Optional[str]) -> dict:
    """Our checkpoint -> theirs (their ``meta`` back when ours kept it)."""
    state = rename(ckpt['state_dict'], reverse=True)
    if bank:  # buffers come after their own parameter (level_embed), as torch orders them
        query, labels = bank_to_buffers(bank)
        items = list(state.items())
        state = OrderedDict(items[:1] + [(QUERY_CACHE, query), (LABEL_CACHE, labels)]
                            + items[1:])
    meta = (ckpt.get('meta') or {}).get('source_meta')
    if meta is None:
        meta = dict(converted_from=osp.basename(src), source='mmsamantics')
    return dict(meta=meta, state_dict=state)


def convert(src: str, dst: str, reverse: bool = False, config: Optional[str] = None,
            bank: Optional[str] = None) -> List[str]:
    """Convert ``src`` into ``dst`` (written atomically); returns the dropped top-level
    entries of ``src`` (optimizer, schedulers, message hub)."""
    if osp.abspath(src) == osp.abspath(dst):
        raise ValueError('the output would overwrite the input: give another OUT')
    ckpt = read_checkpoint(src)
    out = to_theirs(ckpt, src, bank) if reverse else to_ours(ckpt, src, config, bank)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    tmp = f'{dst}.{os.getpid()}.tmp'
    torch.save(out, tmp)
    os.replace(tmp, dst)
    return sorted(k for k in ckpt if k not in ('meta', 'state_dict'))


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('src', metavar='IN', help='checkpoint of the authors\' code (ours with '
                   '--reverse)')
    p.add_argument('dst', metavar='OUT', help='converted checkpoint')
    p.add_argument('--reverse', action='store_true', help='ours -> the authors\'')
    p.add_argument('--config', help='check the converted weights against this config\'s model '
                   '(needed with --bank theirs -> ours: the bank\'s signature)')
    p.add_argument('--bank', help='theirs -> ours: write their precomputed references here; '
                   '--reverse: put this bank\'s references into their buffers')
    args = p.parse_args(argv)
    if args.reverse and args.config:
        p.error('--config checks ours: use it without --reverse')
    try:
        dropped = convert(args.src, args.dst, args.reverse, args.config, args.bank)
    except (FileNotFoundError, KeyError, RuntimeError, ValueError) as e:
        sys.exit(f'error: {e.args[0] if isinstance(e, KeyError) else e}')
    print(f'{args.dst} written' + (f' (dropped: {", ".join(dropped)})' if dropped else ''))


if __name__ == '__main__':
    main()
