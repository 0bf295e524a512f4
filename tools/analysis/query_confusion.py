"""Which queried classes fire on each ground-truth object of an open-mode evaluation, e.g.

    python tools/test.py configs/insam_detr_toy.py CKPT --mode open --out preds.pkl
    python tools/analysis/query_confusion.py preds.pkl \
        data/toy_world/annotations/instances_val.json --classes-from toy \
        --only-split base --splits-file data/toy_world/annotations/splits.json \
        --out confusion.json

For every ground-truth object and queried class: the highest score of that class's
detections with box IoU >= --iou-thr on the object (0 if none). Prints per ground-truth
class the mean of its own class's score, how often its own class scores strictly highest,
and the strongest other queried class; for "<attribute> <kind>" class names (the toy
world's "red circle") the same by group: own class, same attribute / other kind, same kind /
other attribute, other. --out writes the full class-by-class matrix as JSON.
"""
import argparse
import os.path as osp
import sys
from typing import List, Optional

import mmengine

from mmsamantics.analysis.query_confusion import confusion_table, query_confusion
from mmsamantics.datasets.class_splits import (CLASS_SPLIT_NAMES, ann_file_classes,
                                               load_splits, split_classes)
from mmsamantics.utils import MissingResourceError
from mmsamantics.utils.files import read_json, write_json_atomic


def parse_args(argv: Optional[List[str]] = None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('predictions', help='pickle of tools/test.py --mode open --out')
    p.add_argument('ann_file', help='COCO-format annotations of the tested images')
    p.add_argument('--classes-from', default='ann', metavar='ann|toy|...',
                   choices=('ann',) + CLASS_SPLIT_NAMES,
                   help="the class names of the prediction labels: 'ann' (every category of "
                   "ANN_FILE, id order) or a named class list ('toy', 'coco', ...); the test "
                   "dataset's classes (default: ann)")
    p.add_argument('--only-split', help='count only the objects of this split (e.g. base)')
    p.add_argument('--splits-file', help='{"base": [...], "novel": [...]} class names')
    p.add_argument('--iou-thr', type=float, default=0.5,
                   help='box IoU at which a detection is on an object')
    p.add_argument('--score-thr', type=float, default=0.3,
                   help='score counted as a detection in the grouped summary')
    p.add_argument('--out', help='write the result (with the full matrix) to this JSON')
    return p.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    for path, what in ((args.predictions, 'predictions pickle'),
                       (args.ann_file, 'annotation file'), (args.splits_file, 'splits file')):
        if path is not None and not osp.isfile(path):
            sys.exit(f'error: {what} {path!r} not found')
    if args.only_split and not args.splits_file:
        sys.exit('error: --only-split needs --splits-file (e.g. '
                 'data/toy_world/annotations/splits.json)')
    try:
        coco = read_json(args.ann_file, 'annotation file')
        classes = (ann_file_classes(args.ann_file) if args.classes_from == 'ann'
                   else split_classes(args.classes_from))
        classes_of_gt = None
        if args.only_split:
            splits = load_splits(args.splits_file)
            if args.only_split not in splits:
                sys.exit(f'error: no split {args.only_split!r} in {args.splits_file} '
                         f'(it has {", ".join(splits)})')
            classes_of_gt = splits[args.only_split]
        predictions = mmengine.load(args.predictions, file_format='pkl')
        result = query_confusion(predictions, coco, classes, args.iou_thr, classes_of_gt,
                                 args.score_thr)
    except (ValueError, MissingResourceError) as e:
        sys.exit(f'error: {e}')
    result.update(predictions=args.predictions, ann_file=args.ann_file,
                  only_split=args.only_split)
    print(confusion_table(result))
    if args.out:
        write_json_atomic(args.out, result, indent=1)
        print(f'written: {args.out}')
    return result


if __name__ == '__main__':
    main()
