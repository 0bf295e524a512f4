"""Find the classes of a references file in a folder of images; write COCO results (+ PNGs).

    python tools/infer.py configs/insam_detr_toy_ref_head.py work_dirs/demo/epoch_12.pth \
        --refs data/toy_world/refs/refs_seed42.json --ref-img-dir data/toy_world/train \
        --shots 5 --img-dir data/toy_world/val --out-dir work_dirs/infer --vis

Writes OUT/results.json (COCO results: image_id, category_id, bbox xywh, score,
segmentation RLE), OUT/images.json (the images with the ids used and the reference classes as
categories: a GT-free COCO file the results load against), OUT/summary.json, and
OUT/vis/*.png with --vis. Unreadable images are skipped, listed, and the run goes on.
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

from mmengine.config import DictAction


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config')
    p.add_argument('checkpoint', nargs='?', default=None,
                   help='trained weights (default: the config\'s own, e.g. a training-free model)')
    refs = p.add_argument_group('references (one of --refs / --bank)')
    refs.add_argument('--refs', help='COCO-format JSON of reference annotations')
    refs.add_argument('--ref-img-dir', help='folder of the reference images (default: the '
                      'folder of --refs)')
    refs.add_argument('--shots', type=int, default=None,
                      help='at most K references per class (the "shot" rank when present)')
    refs.add_argument('--bank', help='reference bank written by --save-bank (no image read)')
    refs.add_argument('--save-bank', help='write the encoded references to this bank file')
    refs.add_argument('--classes', nargs='+', help='query only these classes')
    imgs = p.add_argument_group('images (one of --img-dir / --images)')
    imgs.add_argument('--img-dir', help='folder of images to process')
    imgs.add_argument('--images', nargs='+', help='image files and/or globs (quote globs)')
    imgs.add_argument('--image-ids-from', help='COCO JSON whose image ids to use (matched by '
                      'file name), so the results can be scored against it')
    p.add_argument('--out-dir', required=True)
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 (default: cuda if available)')
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--score-thr', type=float, default=0.3,
                   help='keep detections scoring at least this (0 for COCO evaluation)')
    p.add_argument('--max-dets', type=int, default=100, help='detections per image at most')
    p.add_argument('--vis', action='store_true', help='write OUT/vis/<image>.png')
    p.add_argument('--vis-score-thr', type=float, default=0.3,
                   help='draw detections scoring at least this (drawing is slow on CPU)')
    p.add_argument('--no-progress', action='store_true')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args(argv)
    if bool(args.refs) == bool(args.bank):
        p.error('give exactly one of --refs and --bank')
    if args.bank and (args.shots or args.ref_img_dir):
        p.error('--shots and --ref-img-dir apply to --refs (a bank holds its references)')
    if bool(args.img_dir) == bool(args.images):
        p.error('give exactly one of --img-dir and --images')
    return args


def image_ids(results, names, ids_file):
    """Image ids: those of ``ids_file`` by file name (then base name), else 1..N."""
    if ids_file is None:
        return list(range(1, len(results) + 1))
    with open(ids_file) as f:
        imgs = json.load(f)['images']
    by_name = {im['file_name']: im['id'] for im in imgs}
    by_base = {osp.basename(im['file_name']): im['id'] for im in imgs}
    ids, nxt, unknown = [], max(by_name.values(), default=0) + 1, []
    for name in names:
        i = by_name.get(name, by_base.get(osp.basename(name)))
        if i is None:
            unknown.append(name)
            i, nxt = nxt, nxt + 1
        ids.append(i)
    if unknown:
        print(f'warning: {len(unknown)} images are not in {ids_file} and got new ids, e.g. '
              f'{unknown[:3]}', file=sys.stderr)
    return ids


def main(argv=None) -> int:
    args = parse_args(argv)
    from mmsamantics.apis import CheckpointMismatchError, InContextInferencer
    from mmsamantics.apis.inputs import expand_inputs
    from mmsamantics.apis.outputs import coco_images, coco_results
    from mmsamantics.utils import MissingResourceError
    t0 = time.time()
    try:
        images = expand_inputs(args.img_dir or args.images)  # fail fast, before the model
        inf = InContextInferencer(args.config, args.checkpoint, device=args.device,
                                  cfg_options=args.cfg_options)
        if args.refs:
            inf.add_references_from_coco(args.refs, args.ref_img_dir, args.shots)
        else:
            inf.load_bank(args.bank)
        if args.save_bank:
            inf.save_bank(args.save_bank)
        n_refs = len(inf.references)
        print(f'{n_refs} references of {len(inf.classes)} classes ready '
              f'({time.time() - t0:.1f}s)', flush=True)
        vis_dir = osp.join(args.out_dir, 'vis') if args.vis else None
        results = inf(images, batch_size=args.batch_size, score_thr=args.score_thr,
                      max_dets=args.max_dets, classes=args.classes, vis_dir=vis_dir,
                      vis_score_thr=args.vis_score_thr, show_progress=not args.no_progress)
    except (MissingResourceError, FileNotFoundError, ValueError, RuntimeError,
            CheckpointMismatchError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    root = args.img_dir
    names = [osp.relpath(r['img_path'], root) if root else r['img_path'] for r in results]
    ids = image_ids(results, names, args.image_ids_from)
    os.makedirs(args.out_dir, exist_ok=True)
    dets = coco_results(results, ids, inf.category_ids)
    with open(osp.join(args.out_dir, 'results.json'), 'w') as f:
        json.dump(dets, f)
    with open(osp.join(args.out_dir, 'images.json'), 'w') as f:
        json.dump(coco_images(results, ids, names, inf.category_ids), f)
    summary = dict(inf.stats, total_seconds=round(time.time() - t0, 2), references=n_refs,
                   classes=inf.classes,
                   skipped_files=[dict(file=p, reason=r) for p, r in inf.failed])
    with open(osp.join(args.out_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    for p, r in inf.failed:
        print(f'skipped {p}: {r}', file=sys.stderr)
    s = inf.stats
    print(f'{s["images"]} images, {s["detections"]} detections, {s["skipped"]} skipped files, '
          f'{s["seconds"]:.1f}s ({s["images_per_s"]} images/s) -> '
          f'{osp.join(args.out_dir, "results.json")}')
    if not results:
        print('error: no image could be read', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
