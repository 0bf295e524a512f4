"""Write the fixed k-shot evaluation reference sets, one file per seed (paper §5.2, Tables 2-3).

Writes ``OUT_DIR/refs_seed{seed}.json`` and prints how many shots each class got.
``--selection authors`` (default) is the authors' ``create_eval_jsons.py`` id for id
(:mod:`mmsamantics.datasets.reference_selection`): use it for numbers compared with the
paper. ``--selection per-class`` (:mod:`mmsamantics.datasets.reference_sets`) draws each
class on its own stream, so a class's references do not depend on the other classes (e.g.
a 20-class subset gets the same references as all 80); it also prints how many images hold
an eligible instance per class. The defaults are the authors' thresholds.

COCO, the paper's protocol (10 shots, seeds 42 123 33)::

    python tools/misc/make_reference_sets.py data/coco/annotations/instances_train2017.json \
        --out-dir data/coco/references

Toy world (224-320 px images, ~0.4x the side of a COCO image; shapes 36-96 px across):
scale the pixel thresholds, ``--min-area 256 --border 4 --frame 6`` (32**2 would drop the
smallest 22% of the toy instances, mostly triangles and stars)::

    python tools/misc/make_reference_sets.py data/toy_world/annotations/instances_train.json \
        --out-dir data/toy_world/refs_authors --min-area 256 --border 4 --frame 6
"""
import argparse
import json
import os
import os.path as osp
from typing import List, Optional

from mmsamantics.datasets.reference_selection import (AUTHORS_THRESHOLDS,
                                                      select_authors_reference_set)
from mmsamantics.datasets.reference_sets import select_reference_set

SELECTIONS = ('authors', 'per-class')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('ann_file', help='COCO instances JSON to draw references from (train)')
    p.add_argument('--out-dir', required=True)
    p.add_argument('--seeds', type=int, nargs='+', default=[42, 123, 33])
    p.add_argument('--max-shots', type=int, default=10)
    p.add_argument('--selection', choices=SELECTIONS, default='authors',
                   help="'authors': their procedure id for id (paper numbers); 'per-class': "
                   'one stream per class (references independent of the other classes)')
    t = AUTHORS_THRESHOLDS
    p.add_argument('--min-area', type=float, default=t['min_area'], help='area > this')
    p.add_argument('--max-area-frac', type=float, default=t['max_area_frac'],
                   help='area < this x image area')
    p.add_argument('--max-aspect', type=float, default=t['max_aspect'],
                   help='aspect in [1/x, x]: of the IMAGE (authors) or the box (per-class)')
    p.add_argument('--border', type=float, default=t['border'],
                   help='box at least this many px inside the image')
    p.add_argument('--frame', type=int, default=t['frame'],
                   help='authors: width in px of the border frame of the mask test')
    p.add_argument('--max-frame-pct', type=float, default=t['max_frame_pct'],
                   help='authors: the mask covers less than this %% of the frame')
    p.add_argument('--max-iou', type=float, default=t['max_iou'],
                   help='box IoU <= this with every other instance of the image')
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
    select = select_reference_set
    if args.selection == 'authors':
        filters.update(frame=args.frame, max_frame_pct=args.max_frame_pct)
        select = select_authors_reference_set
    os.makedirs(args.out_dir, exist_ok=True)
    info = None
    for seed in args.seeds:
        try:
            ref = select(coco, seed, args.max_shots, **filters)
        except ValueError as e:  # bad file, filters or class names: one readable line
            raise SystemExit(f'error: {e}') from e
        ref['info']['source_ann_file'] = osp.basename(args.ann_file)
        out = osp.join(args.out_dir, f'refs_seed{seed}.json')
        with open(out, 'w') as f:
            json.dump(ref, f)
        print(f'seed {seed}: {len(ref["annotations"])} references -> {out}')
        info = ref['info']
    print_table(info, args.max_shots)


def print_table(info: dict, max_shots: int) -> None:
    """Shots per class of the last seed (per-class: also the eligible images, which do not
    depend on the seed)."""
    eligible = info.get('eligible_images')
    width = max(map(len, info['shots_available']), default=5)
    print(f'\n{"class":<{width}}  ' + ('eligible images  ' if eligible else '') + 'shots')
    for name, k in info['shots_available'].items():
        flag = '' if k == max_shots else '  < max-shots'
        col = f'{eligible[name]:>15}  ' if eligible else ''
        print(f'{name:<{width}}  {col}{k:>5}{flag}')
    if info['classes_without_references']:
        print(f'classes without references: {info["classes_without_references"]}')
    print(f'k-shot evaluation is complete for k <= {min(info["shots_available"].values())}')


if __name__ == '__main__':
    main()
