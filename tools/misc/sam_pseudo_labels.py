"""WSSS pseudo-labels with SAM: boxes (GT, or any mmdet detector) -> SAM box prompts ->
instance masks -> one semantic label PNG per image (VOC palette, 0 = background), e.g.

    # boxes from the GT (upper bound of the box source), plus GT label PNGs to score against
    python tools/misc/sam_pseudo_labels.py --ann-file data/voc/instances_train.json \
        --img-dir data/voc/JPEGImages --boxes gt --sam-preset vit_h \
        --sam-checkpoint checkpoints/sam_vit_h_4b8939.pth --out-dir work_dirs/pseudo/gt \
        --gt-out-dir work_dirs/pseudo/gt_labels
    # boxes from a detector (config + checkpoint), score >= 0.3; Grounding DINO with the
    # image-level class names as its text prompt: add --text-prompt
    python tools/misc/sam_pseudo_labels.py ... --boxes detector \
        --det-config DET_CONFIG.py --det-checkpoint DET.pth --score-thr 0.3

Then score them: tools/analysis/eval_pseudo_labels.py PRED_DIR GT_DIR.
"""
import argparse
import os.path as osp
import sys
import time

from mmsamantics.prompt_study import PROMPTER_PRESETS, SAMBoxPrompter, load_coco
from mmsamantics.utils import MissingResourceError
from mmsamantics.wsss import (OVERLAP_RULES, DetectorBoxSource, GTBoxSource, coco_classes,
                              generate_pseudo_labels, write_gt_labels)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='SAM pseudo-labels (semantic PNGs) from boxes')
    p.add_argument('--ann-file', required=True,
                   help='COCO-format JSON: images, classes (and GT boxes for --boxes gt)')
    p.add_argument('--img-dir', required=True, help='folder of the JSON\'s images')
    p.add_argument('--boxes', choices=('gt', 'detector'), default='gt')
    p.add_argument('--det-config', help='mmdet config of the detector (--boxes detector)')
    p.add_argument('--det-checkpoint', help='its checkpoint (--boxes detector)')
    p.add_argument('--score-thr', type=float, default=0.3, help='detector score threshold')
    p.add_argument('--class-map', nargs='+', default=[], metavar='DET=DATASET',
                   help='rename detector classes to dataset classes')
    p.add_argument('--drop-unmapped', action='store_true',
                   help='drop detections of classes the dataset lacks (default: error)')
    p.add_argument('--text-prompt', action='store_true', help='grounding detector: prompt '
                   'each image with its image-level class names from --ann-file')
    p.add_argument('--sam-preset', default='vit_h', choices=sorted(PROMPTER_PRESETS))
    p.add_argument('--sam-checkpoint', help='local SAM weights (omit: RANDOM weights)')
    p.add_argument('--overlap', default='score', choices=OVERLAP_RULES,
                   help='which instance wins an overlap: higher score or smaller area')
    p.add_argument('--ignore-conflicts', action='store_true',
                   help='label pixels claimed by two classes 255 (ignore)')
    p.add_argument('--gt-out-dir', help='also write GT label PNGs from the JSON\'s masks')
    p.add_argument('--max-images', type=int, help='only the first N images')
    p.add_argument('--device', default='cpu')
    p.add_argument('--out-dir', default='work_dirs/pseudo_labels')
    return p.parse_args(argv)


def parse_class_map(pairs):
    out = {}
    for pair in pairs:
        if '=' not in pair:
            raise ValueError(f'--class-map entries are DET_NAME=DATASET_NAME, got {pair!r}')
        k, v = pair.split('=', 1)
        out[k] = v
    return out


def build_box_source(args, coco):
    cat_to_label, names = coco_classes(coco)
    if args.boxes == 'gt':
        return GTBoxSource(coco, cat_to_label)
    if not (args.det_config and args.det_checkpoint):
        raise ValueError('--boxes detector needs --det-config and --det-checkpoint')
    return DetectorBoxSource(args.det_config, args.det_checkpoint, names, args.score_thr,
                             parse_class_map(args.class_map), args.drop_unmapped,
                             args.text_prompt, coco, args.device)


def report_progress(done: int, total: int) -> None:
    if done == total or done % max(1, total // 10) == 0:
        print(f'{done}/{total} images', file=sys.stderr, flush=True)


def main(argv=None):
    args = parse_args(argv)
    if not osp.isdir(args.img_dir):
        sys.exit(f'error: image folder {args.img_dir!r} not found')
    t0 = time.perf_counter()
    try:
        coco = load_coco(args.ann_file)
        source = build_box_source(args, coco)
        sam = SAMBoxPrompter(args.sam_preset, args.sam_checkpoint, args.device)
        stats = generate_pseudo_labels(coco, args.img_dir, source, sam, args.out_dir,
                                       args.overlap, args.ignore_conflicts, args.max_images,
                                       report_progress)
        if args.gt_out_dir:
            gt = write_gt_labels(coco, args.gt_out_dir, max_images=args.max_images)
    except (MissingResourceError, FileNotFoundError, ValueError, KeyError) as e:
        sys.exit(f'error: {e}')
    print(f'{stats["images"]} pseudo-label PNGs ({stats["boxes"]} {args.boxes} boxes, '
          f'{stats["empty_images"]} images without a box) in {time.perf_counter() - t0:.1f}s '
          f'-> {args.out_dir}')
    if args.gt_out_dir:
        print(f'{gt["images"]} GT label PNGs -> {args.gt_out_dir}')


if __name__ == '__main__':
    main()
