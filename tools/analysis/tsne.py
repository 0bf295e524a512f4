"""t-SNE of reference features before/after the token-merge MLP and of backbone features
(paper Fig. 5), with cosine silhouette scores, e.g.

    python tools/analysis/tsne.py configs/insam_detr_toy_shape.py work_dirs/demo/epoch_12.pth \
        --ann-file data/toy_world/annotations/instances_val.json --img-dir data/toy_world/val \
        --splits-file data/toy_world/annotations/splits.json --out-dir work_dirs/tsne
    # another backbone's pooled features (DINOv2 / CLIP ...): a config file or a dict
    ... --what backbone --backbone-cfg "dict(type='mmpretrain.VisionTransformer', \
        arch='b', out_type='featmap', init_cfg=dict(type='Pretrained', checkpoint=CKPT))"
    # SAM 3's Perception Encoder (checkpoints/sam3.pt), with sam3's own normalisation
    ... --what backbone --backbone-cfg configs/_base_/models/sam3_pe_backbone.py

Writes tsne_tokens.png, tsne_mlp.png, tsne_backbone.png and tsne_summary.json.
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmengine.config import DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint

import mmsamantics  # noqa: F401
from mmdet.registry import MODELS
from mmsamantics.analysis import (analyse, backbone_features, build_backbone, load_instances,
                                  model_input_size, reference_features)
from mmsamantics.engine import missing_resources
from mmsamantics.utils.config_paths import load_config

KINDS = ('tokens', 'mlp', 'backbone')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='t-SNE of InSAM-DETR / backbone features')
    p.add_argument('config', help='model config file')
    p.add_argument('checkpoint', nargs='?', default=None,
                   help='trained checkpoint (omit: random token-merge MLP and DETR)')
    p.add_argument('--ann-file', required=True, help='COCO-format annotation JSON')
    p.add_argument('--img-dir', required=True, help='folder of the JSON\'s images')
    p.add_argument('--splits-file', help='{"base": [...], "novel": [...]} class names')
    p.add_argument('--per-class', type=int, default=30, help='instances per class (max)')
    p.add_argument('--min-area', type=float, default=32 ** 2, help='min instance area')
    p.add_argument('--out-dir', default='work_dirs/tsne')
    p.add_argument('--what', nargs='+', choices=KINDS, default=list(KINDS))
    p.add_argument('--backbone-cfg', help='backbone config file or python dict '
                   '(default: the model\'s own backbone)')
    p.add_argument('--backbone-output', type=int, default=None,
                   help='index into the backbone\'s output tuple (default: its last tensor '
                   'output; an interactive SAM 2 / SAM 3 embedding tuple is skipped)')
    p.add_argument('--perplexity', type=float, default=30.0)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--batch-size', type=int, default=8)
    p.add_argument('--device', default='cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings')
    return p.parse_args(argv)


def build_model(args):
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    missing = [m for m in missing_resources(cfg, 'test') if m.startswith('checkpoint')]
    if missing:
        sys.exit('error: ' + '; '.join(missing))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = MODELS.build(cfg.model)
    if args.checkpoint is not None:
        try:
            load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
        except RuntimeError as e:
            sys.exit(f'error: {args.checkpoint!r} does not fit {args.config!r}: {e}')
    return cfg, model.to(args.device).eval()


def main(argv=None):
    args = parse_args(argv)
    for path, what, ok in ((args.checkpoint, 'checkpoint', osp.isfile),
                           (args.ann_file, 'annotation file', osp.isfile),
                           (args.img_dir, 'image folder', osp.isdir),
                           (args.splits_file, 'splits file', osp.isfile)):
        if path is not None and not ok(path):
            sys.exit(f'error: {what} {path!r} not found')
    try:
        data = load_instances(args.ann_file, args.img_dir, args.per_class, args.min_area,
                              args.seed, args.splits_file)
    except ValueError as e:
        sys.exit(f'error: {e}')
    cfg, model = build_model(args)
    size = model_input_size(model)
    feats = {}
    if {'tokens', 'mlp'} & set(args.what):
        feats['tokens'], feats['mlp'] = reference_features(model, data.instances, size,
                                                           args.batch_size)
    if 'backbone' in args.what:
        if args.backbone_cfg:
            try:
                bb, pre, bb_size = build_backbone(args.backbone_cfg,
                                                  cfg.model.data_preprocessor, size)
            except (FileNotFoundError, ValueError) as e:  # missing weights, bad spec
                sys.exit(f'error: --backbone-cfg: {e}')
            bb, pre = bb.to(args.device), pre.to(args.device)
        else:
            bb, pre, bb_size = model.backbone, model.data_preprocessor, size
        feats['backbone'] = backbone_features(bb, pre, data.instances, bb_size,
                                              args.backbone_output, args.batch_size)
    os.makedirs(args.out_dir, exist_ok=True)
    names = dict(tokens='tokens before the token-merge MLP', mlp='after the token-merge MLP',
                 backbone=('last tensor backbone output' if args.backbone_output is None
                           else f'backbone output {args.backbone_output}') + ', mask-averaged')
    summary = dict(config=args.config, checkpoint=args.checkpoint, ann_file=args.ann_file,
                   backbone_cfg=args.backbone_cfg or 'model.backbone',
                   classes=data.class_names, novel_classes=data.novel_classes,
                   counts={n: int((data.labels == c).sum())
                           for c, n in enumerate(data.class_names)})
    print(f'{"features":<9} {"dim":>5}  silhouette(cosine): all / base / novel   1-NN acc.')
    for kind in args.what:
        png = osp.join(args.out_dir, f'tsne_{kind}.png')
        summary[kind] = analyse(feats[kind], data, names[kind], png, args.seed,
                                args.perplexity)
        s = summary[kind]['silhouette']
        row = ' / '.join('n/a' if s[k] is None else f'{s[k]:.3f}'
                         for k in ('all', 'base', 'novel'))
        knn = summary[kind]['knn1']
        print(f'{kind:<9} {summary[kind]["dim"]:>5}  {row}   '
              f'{"n/a" if knn is None else f"{knn:.3f}"}   -> {png}')
    with open(osp.join(args.out_dir, 'tsne_summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    print(f'summary: {osp.join(args.out_dir, "tsne_summary.json")}')


if __name__ == '__main__':
    main()
