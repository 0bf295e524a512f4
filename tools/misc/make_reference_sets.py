"""Write the fixed k-shot evaluation reference sets, one file per seed (paper §5.2, Tables 2-3).

Filters and selection: :mod:`mmsamantics.datasets.reference_sets` (the authors'
``create_eval_jsons``). Writes ``OUT_DIR/refs_seed{seed}.json`` and prints, per class, how
many distinct images hold an eligible instance and how many shots the files contain.

COCO (the authors' settings are the defaults)::

    python tools/misc/make_reference_sets.py data/coco/annotations/instances_train2017.json \
        --out-dir data/coco/references --seeds 42 123 33 --max-shots 10

Toy world (224-320 px images, ~0.4x the side of a COCO image; shapes 36-96 px across):
scale the pixel thresholds, ``--min-area 256 --border 4`` (32**2 would drop the smallest
22% of the toy instances, mostly triangles and stars). Measured on the default toy
train set (400 images, seed 0): 10 shots for all 12 classes, 42-71 eligible images per
class (the COCO defaults would give 35-60); a 100-image toy world still gives >= 11::

    python tools/misc/make_reference_sets.py data/toy_world/annotations/instances_train.json \
        --out-dir data/toy_world/references --min-area 256 --border 4
"""
import argparse
import json
import os
import os.path as osp
from typing import List, Optional

from mmsamantics.datasets.reference_sets import select_reference_set


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('ann_file', help='COCO instances JSON to draw references from (train)')
    p.add_argument('--out-dir', required=True)
    p.add_argument('--seeds', type=int, nargs='+', default=[42, 123, 33])
    p.add_argument('--max-shots', type=int, default=10)
    p.add_argument('--min-area', type=float, default=32 * 32)
    p.add_argument('--max-area-frac', type=float, default=0.5)
    p.add_argument('--max-aspect', type=float, default=5.0)
    p.add_argument('--border', type=float, default=10)
    p.add_argument('--max-iou', type=float, default=0.35)
    p.add_argument('--classes-file', help='JSON {split: [class names]} (e.g. splits.json) '
                   'or a JSON list of names; restricts the classes')
    p.add_argument('--split', help='key of --classes-file to use (e.g. novel)')
    return p.parse_args(argv)


def read_classes(path: str, split: Optional[str]) -> List[str]:
    """Class names from ``--classes-file`` / ``--split``."""
    with open(path) as f:
        data = json.load(f)
    if isinstance(data, list):
        return data
    if split is None:
        raise SystemExit(f'{path} holds the splits {sorted(data)}: choose one with --split')
    if split not in data:
        raise SystemExit(f'--split {split!r} is not a key of {path}; choose one of '
                         f'{sorted(data)}')
    return data[split]


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    if args.split and not args.classes_file:
        raise SystemExit('--split needs --classes-file (e.g. annotations/splits.json)')
    if not osp.isfile(args.ann_file):
        raise SystemExit(f'annotation file not found: {args.ann_file}')
    classes = read_classes(args.classes_file, args.split) if args.classes_file else None
    with open(args.ann_file) as f:
        coco = json.load(f)  # loaded once for all seeds
    filters = dict(min_area=args.min_area, max_area_frac=args.max_area_frac,
                   max_aspect=args.max_aspect, border=args.border, max_iou=args.max_iou,
                   classes=classes)
    os.makedirs(args.out_dir, exist_ok=True)
    info = None
    for seed in args.seeds:
        try:
            ref = select_reference_set(coco, seed, args.max_shots, **filters)
        except ValueError as e:  # bad file, filters or class names: one readable line
            raise SystemExit(f'error: {e}') from e
        ref['info']['source_ann_file'] = osp.basename(args.ann_file)
        out = osp.join(args.out_dir, f'refs_seed{seed}.json')
        with open(out, 'w') as f:
            json.dump(ref, f)
        print(f'seed {seed}: {len(ref["annotations"])} references -> {out}')
        info = ref['info']
    # eligibility and shot counts do not depend on the seed: one table
    width = max(map(len, info['shots_available']), default=5)
    print(f'\n{"class":<{width}}  eligible images  shots')
    for name, k in info['shots_available'].items():
        flag = '' if k == args.max_shots else '  < max-shots'
        print(f'{name:<{width}}  {info["eligible_images"][name]:>15}  {k:>5}{flag}')
    if info['classes_without_references']:
        print(f'classes without references: {info["classes_without_references"]}')
    print(f'k-shot evaluation is complete for k <= {min(info["shots_available"].values())}')


if __name__ == '__main__':
    main()
