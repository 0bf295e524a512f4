"""COCO-NOVEL: base-only training annotations (+ the splits file the metric reads).

    python tools/misc/make_coco_novel.py data/coco/annotations/instances_train2017.json \
        --out data/coco/annotations/instances_train2017_base.json
    # any dataset with its own split (the toy world):
    python tools/misc/make_coco_novel.py data/toy_world/annotations/instances_train.json \
        --splits-file data/toy_world/annotations/splits.json \
        --out data/toy_world/annotations/instances_train_base.json

Writes OUT (all categories kept, annotations of novel classes removed, so novel objects
appear only as unlabelled background, as in Kang et al.) and OUT_DIR/splits.json (or
reads --splits-file). Train with configs/insam_detr_coco_novel.py or the toy config.
"""
import argparse
import json
import os
import os.path as osp
import sys

from mmsamantics.datasets.class_splits import coco_novel_splits, keep_classes, load_splits
from mmsamantics.utils import MissingResourceError


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('ann_file')
    p.add_argument('--out', required=True)
    p.add_argument('--splits-file', help='{"base": [...], "novel": [...]} (default: COCO-NOVEL)')
    p.add_argument('--drop-empty-images', action='store_true')
    args = p.parse_args()
    if not osp.isfile(args.ann_file):
        sys.exit(f'error: annotation file not found: {args.ann_file!r}')
    with open(args.ann_file) as f:
        coco = json.load(f)
    try:
        splits = load_splits(args.splits_file) if args.splits_file else coco_novel_splits(coco)
        out = keep_classes(coco, splits['base'], args.drop_empty_images,
                           note='base classes only (COCO-NOVEL protocol)')
    except (ValueError, MissingResourceError) as e:
        sys.exit(f'error: {e}')
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(out, f)
    if not args.splits_file:
        with open(osp.join(osp.dirname(osp.abspath(args.out)), 'splits.json'), 'w') as f:
            json.dump(splits, f, indent=1)
    n0, n1 = len(coco['annotations']), len(out['annotations'])
    print(f'{len(splits["base"])} base classes kept, {len(coco["categories"]) - len(splits["base"])} '
          f'other classes removed: {n1}/{n0} annotations, {len(out["images"])} images -> '
          f'{args.out}')


if __name__ == '__main__':
    main()
