"""SAMBOX: annotate a folder of images with SAM clicks and boxes in the browser.

    python tools/annotate.py data/toy_world/val --out work_dirs/annotate/val.json
    python tools/annotate.py IMG_DIR --out ANN.json --config configs/insam_detr_coco.py \
        --checkpoint work_dirs/insam_detr_coco/epoch_50.pth \
        --find-model matcher configs/matcher_coco.py

Opens on the first image at http://127.0.0.1:8000 and resumes from ANN.json when it exists
(a COCO instances file, written on every change). Needs the optional extra:
``pip install -e .[app]``. See docs/annotate.md.
"""
import argparse
import sys
from collections import OrderedDict

from mmengine.config import DictAction


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('img_dir', help='folder of images to annotate (not recursive)')
    p.add_argument('--out', required=True, help='COCO JSON to write (resumed when it exists)')
    p.add_argument('--config', default='configs/matcher_toy.py',
                   help='in-context model whose SAM segments the clicks, and the first '
                        '"find the rest" model (default: the training-free toy matcher)')
    p.add_argument('--checkpoint', default=None, help='trained weights of --config')
    p.add_argument('--find-model', nargs='+', action='append', default=[],
                   metavar=('NAME CONFIG', 'CHECKPOINT'),
                   help='another in-context model offered by "find the rest" (repeatable)')
    p.add_argument('--classes', nargs='+', default=[], help='class names to start with')
    p.add_argument('--cache-dir', default=None,
                   help='embedding cache (default: <out without .json>_embeddings)')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 (default: cuda if any)')
    p.add_argument('--host', default='127.0.0.1', help='bind address (default: local only)')
    p.add_argument('--port', type=int, default=8000)
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='overrides of --config, e.g. model.backbone.checkpoint=None')
    args = p.parse_args(argv)
    models = OrderedDict()
    for spec in args.find_model:
        if len(spec) not in (2, 3):
            p.error(f'--find-model takes NAME CONFIG [CHECKPOINT], got {spec}')
        models[spec[0]] = (spec[1], spec[2] if len(spec) == 3 else None)
    args.find_models = models
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        from mmsamantics.app.server import serve
        from mmsamantics.app.session import AnnotationSession
    except ImportError as e:
        print(f'error: {e}. The annotation tool is an optional extra: pip install -e .[app]',
              file=sys.stderr)
        return 2
    from mmsamantics.apis import CheckpointMismatchError
    try:
        session = AnnotationSession.from_config(
            args.img_dir, args.out, args.config, args.checkpoint, args.device,
            cfg_options=args.cfg_options, cache_root=args.cache_dir, classes=args.classes, find_models=args.find_models)
    except (FileNotFoundError, ValueError, KeyError, CheckpointMismatchError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    for name, reason in session.folder.skipped:
        print(f'skipped {name}: {reason}', file=sys.stderr)
    print(f'{len(session.folder)} images of {args.img_dir} -> {args.out}; open '
          f'http://{args.host}:{args.port}', flush=True)
    serve(session, args.host, args.port)
    return 0


if __name__ == '__main__':
    sys.exit(main())
