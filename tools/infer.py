"""Find the classes of a references file in a folder of images; write COCO results (+ PNGs).

    make demo   # trains work_dirs/demo/epoch_12.pth, writes data/toy_world/refs/refs_seed42.json
    python tools/infer.py configs/insam_detr_toy_shape.py work_dirs/demo/epoch_12.pth \
        --refs data/toy_world/refs/refs_seed42.json --ref-img-dir data/toy_world/train \
        --shots 5 --img-dir data/toy_world/val --out-dir work_dirs/infer --vis

Every option, file and folder is checked before the model is built. Each image's results
are appended to OUT/results.jsonl as soon as it is done; at the end OUT/results.json (COCO
results: image_id, category_id, bbox xywh, score, segmentation RLE), OUT/images.json (the
images with the ids used and the reference classes as categories: a GT-free COCO file the
results load against) and OUT/summary.json are written atomically, and OUT/vis/*.png with
--vis. An interrupted run (Ctrl-C) continues with the same command plus --resume; a folder
holding an earlier run's outputs needs --resume or --overwrite. Unreadable images, and
images the model cannot take (too thin, too large for --max-megapixels), are skipped and
listed with their reason; the run goes on.
"""
import argparse
import logging
import os.path as osp
import shlex
import sys
import time
import warnings

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')  # mmengine's import
from mmengine.config import DictAction  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config', help='config file of the model (e.g. configs/matcher_coco.py)')
    p.add_argument('checkpoint', nargs='?', default=None,
                   help='trained weights; required unless the model is training-free (matcher, '
                   'PerSAM, SAM 3) or --random-weights is given')
    p.add_argument('--random-weights', action='store_true',
                   help='run a model that has trained weights without its checkpoint: random '
                   'weights, for smoke tests only')
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
                      'path relative to --img-dir, and size), so the results can be scored')
    imgs.add_argument('--max-megapixels', type=float, default=None,
                      help='skip images needing more decoded pixels (default: 250)')
    p.add_argument('--out-dir', required=True, help='folder of the results (created)')
    again = p.add_mutually_exclusive_group()
    again.add_argument('--resume', action='store_true',
                       help='continue the interrupted run in --out-dir')
    again.add_argument('--overwrite', action='store_true',
                       help='replace the outputs of an earlier run in --out-dir (vis/ too)')
    p.add_argument('--device', default=None, help='cpu, cuda, cuda:1 (default: cuda if available)')
    p.add_argument('--batch-size', type=int, default=4,
                   help='images per forward pass (default: %(default)s)')
    p.add_argument('--score-thr', type=float, default=0.3,
                   help='keep detections scoring at least this (default: %(default)s; 0 for '
                   'COCO evaluation)')
    p.add_argument('--max-dets', type=int, default=100,
                   help='detections per image at most (default: %(default)s)')
    p.add_argument('--vis', action='store_true', help='write OUT/vis/<image>.png')
    p.add_argument('--vis-score-thr', type=float, default=0.3,
                   help='draw detections scoring at least this (default: %(default)s; '
                   'drawing is slow on CPU)')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.add_argument('-v', '--verbose', action='store_true',
                   help='keep the logs of model building (weight initialisation, registry)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='overrides of the config, e.g. model.test_cfg.max_per_img=50')
    args = p.parse_args(argv)
    check_args(p, args)
    return args


def check_args(p: argparse.ArgumentParser, args) -> None:
    """Option combinations and ranges (``p.error`` exits with code 2 and one line)."""
    if args.random_weights and args.checkpoint:
        p.error('give either a checkpoint or --random-weights, not both')
    if bool(args.refs) == bool(args.bank):
        p.error('give exactly one of --refs and --bank')
    if args.bank and (args.shots or args.ref_img_dir):
        p.error('--shots and --ref-img-dir apply to --refs (a bank holds its references)')
    if bool(args.img_dir) == bool(args.images):
        p.error('give exactly one of --img-dir and --images')
    for name in ('shots', 'max_dets', 'batch_size'):
        v = getattr(args, name)
        if v is not None and v < 1:
            p.error(f'--{name.replace("_", "-")} must be >= 1, got {v}')
    for name in ('score_thr', 'vis_score_thr'):
        if not 0 <= getattr(args, name) <= 1:
            p.error(f'--{name.replace("_", "-")} must be in [0, 1], got {getattr(args, name)}')
    if args.max_megapixels is not None and not args.max_megapixels > 0:
        p.error(f'--max-megapixels must be > 0, got {args.max_megapixels}')
    if args.img_dir and not osp.isdir(args.img_dir):
        p.error(f'--img-dir {args.img_dir!r} is not a folder')
    if args.save_bank and osp.isdir(args.save_bank):
        p.error(f'--save-bank {args.save_bank!r} is a folder; give a file name')


def run_settings(args, names: list, ids: list) -> dict:
    """The settings that decide the results (``run.json``), paths resolved so that a
    ``--resume`` from another folder or with another spelling of a path compares equal."""
    from mmsamantics.apis.run_dir import resolved
    return dict(
        config=resolved(args.config), checkpoint=resolved(args.checkpoint),
        refs=resolved(args.refs), ref_img_dir=resolved(args.ref_img_dir), shots=args.shots,
        bank=resolved(args.bank), classes=args.classes, cfg_options=str(args.cfg_options),
        score_thr=args.score_thr, max_dets=args.max_dets, batch_size=args.batch_size,
        device=args.device, max_megapixels=args.max_megapixels, vis=args.vis,
        vis_score_thr=args.vis_score_thr, image_ids_from=resolved(args.image_ids_from),
        images=names, image_ids=ids)


def preflight(args) -> dict:
    """Everything that can be checked without the model, in that order; the outputs of an
    earlier run are deleted (--overwrite) only once all checks passed."""
    from mmsamantics.utils.config_paths import load_config

    from mmsamantics.apis.image_ids import image_names, match_image_ids
    from mmsamantics.apis.inputs import expand_inputs
    from mmsamantics.apis.preflight import check_bank_file, check_classes
    from mmsamantics.apis.references import check_reference_images, read_coco_references
    from mmsamantics.apis.run_dir import check_settings, prepare_out_dir
    from mmsamantics.apis.target_images import header_hw
    from mmsamantics.utils import MissingResourceError
    from mmsamantics.utils.files import ensure_writable_folder
    for what, path in (('config', args.config), ('checkpoint', args.checkpoint)):
        if path is not None and not osp.isfile(path):
            raise MissingResourceError(f'{what} not found: {path!r}')
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    ignored: list = []
    images = expand_inputs(args.img_dir or args.images, ignored)
    names = image_names(images, args.img_dir)
    sizes = [header_hw(p) for p in images] if args.image_ids_from else [None] * len(images)
    ids, not_in_gt = match_image_ids(names, sizes, args.image_ids_from)
    if args.refs:
        refs, cat_ids = read_coco_references(args.refs, args.ref_img_dir, args.shots)
        check_reference_images(refs, args.refs)
        check_classes(args.classes, list(cat_ids), args.refs)
    else:
        check_classes(args.classes, check_bank_file(args.bank, cfg), args.bank)
    if args.save_bank:
        ensure_writable_folder(osp.dirname(osp.abspath(args.save_bank)),
                               f'--save-bank {args.save_bank!r}')
    settings = run_settings(args, names, ids)
    found = prepare_out_dir(args.out_dir, args.resume, args.overwrite)
    check_settings(args.out_dir, settings, args.resume)
    if args.vis:
        ensure_writable_folder(osp.join(args.out_dir, 'vis'), '--vis (OUT/vis)')
    return dict(cfg=cfg, images=images, names=names, ids=ids, not_in_gt=not_in_gt,
                ignored=ignored, settings=settings, found=[] if args.overwrite else found)


def build(args, cfg):
    """The inferencer with its references (the slow part: model build, encoding)."""
    from mmsamantics.apis import InContextInferencer
    from mmsamantics.apis.target_images import DEFAULT_MAX_MEGAPIXELS
    from mmsamantics.utils.quiet_logs import quiet_logs
    inf = InContextInferencer(cfg, args.checkpoint, device=args.device,
                              max_megapixels=args.max_megapixels or DEFAULT_MAX_MEGAPIXELS,
                              verbose=args.verbose, random_weights=args.random_weights)
    if args.refs:
        with quiet_logs(level=logging.ERROR):  # its warnings were shown by preflight
            inf.add_references_from_coco(args.refs, args.ref_img_dir, args.shots)
    else:
        inf.load_bank(args.bank)
    if args.save_bank:
        try:
            inf.save_bank(args.save_bank)
        except OSError as e:
            raise ValueError(f'--save-bank {args.save_bank!r} could not be written '
                             f'({e.strerror or e}); give a path you can write to') from None
    return inf


def record(res: dict, name: str, image_id: int, category_ids) -> dict:
    """The results.jsonl line of one image."""
    from mmsamantics.apis.outputs import coco_results
    if 'skipped' in res:
        return dict(index=res['index'], file=name, path=res['img_path'], skipped=res['skipped'])
    return dict(index=res['index'], file=name, path=res['img_path'], image_id=image_id,
                height=res['height'], width=res['width'],
                detections=coco_results([res], [image_id], category_ids))


class NotSkipped(logging.Filter):
    """Drops the inferencer's live "skipped <image>" warnings, which would break the progress
    bar's line: :func:`finish` lists every skipped image with its reason, once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith('skipped ')


def infer(args, ctx: dict, stream, records: dict, t0: float) -> None:
    """Build the model, then infer the images not done yet, appending each to the stream."""
    inf = build(args, ctx['cfg'])
    print(f'{len(inf.references)} references of {len(inf.classes)} classes ready '
          f'({time.time() - t0:.1f}s)', flush=True)
    queried = args.classes or inf.classes  # the classes of the results (and images.json)
    meta = dict(classes=queried, references=sum(r.class_name in queried
                                                for r in inf.references),
                category_ids={c: inf.category_ids[c] for c in queried})
    logger, quiet = MMLogger.get_current_instance(), NotSkipped()
    logger.addFilter(quiet)
    try:
        predict(args, ctx, inf, stream, records, meta)
    finally:
        logger.removeFilter(quiet)


def predict(args, ctx: dict, inf, stream, records: dict, meta: dict) -> None:
    """Stream the records of the images not done yet; the meta line and run.json are
    written with the first image done (a run that fails before it leaves no run.json)."""
    from mmsamantics.apis.run_dir import write_settings
    vis_dir = osp.join(args.out_dir, 'vis') if args.vis else None
    for res in inf.iter_predict(
            ctx['images'], batch_size=args.batch_size, score_thr=args.score_thr,
            max_dets=args.max_dets, classes=args.classes, vis_dir=vis_dir,
            vis_score_thr=args.vis_score_thr, show_progress=not args.no_progress,
            done=records):
        if meta is not None:
            stream.append(dict(meta=meta))
            write_settings(args.out_dir, ctx['settings'])
            meta = None
        i = res['index']
        rec = record(res, ctx['names'][i], ctx['ids'][i], inf.category_ids)
        stream.append(rec)
        records[i] = rec
    if meta is not None:  # nothing was left to do: the meta line still describes the run
        stream.append(dict(meta=meta))


def run(args, ctx: dict, state: dict) -> int:
    """Infer the images not done yet, then finish. A run that stops before its first image
    removes the outputs it created (the folder is free for the next run)."""
    from mmsamantics.apis.run_dir import RecordStream, remove_final, remove_new_outputs
    t0 = time.time()
    stream = RecordStream(args.out_dir)
    records = state['records'] = stream.read() if args.resume else {}
    if args.resume:
        print(f'resuming: {len(records)} of {len(ctx["images"])} images already done',
              flush=True)
    if len(records) < len(ctx['images']) or not stream.meta:
        remove_final(args.out_dir)  # never leave complete-looking files of another run
        try:
            try:
                infer(args, ctx, stream, records, t0)
            finally:
                stream.close()
        except BaseException:
            if not records:
                remove_new_outputs(args.out_dir, ctx['found'])
            raise
    return finish(args, ctx, records, stream.meta, time.time() - t0)


def finish(args, ctx: dict, records: dict, meta: dict, seconds: float) -> int:
    """Write the final files atomically and report."""
    from mmsamantics.apis.run_dir import write_final
    summary = dict(seconds=round(seconds, 2), references=meta['references'],
                   classes=meta['classes'],
                   not_read=[dict(file=p, reason=r) for p, r in ctx['ignored']],
                   images_not_in_ids_file=ctx['not_in_gt'])
    write_final(args.out_dir, records, meta['category_ids'], summary)
    done = [r for r in records.values() if 'skipped' not in r]
    for r in sorted(records.values(), key=lambda r: r['index']):
        if 'skipped' in r:
            print(f'skipped {r["path"]}: {r["skipped"]}', file=sys.stderr)
    if ctx['not_in_gt']:
        print(f'warning: {len(ctx["not_in_gt"])} images are not in {args.image_ids_from} and '
              f'got new ids (listed in summary.json), e.g. {ctx["not_in_gt"][:3]}',
              file=sys.stderr)
    n_det = sum(len(r['detections']) for r in done)
    print(f'{len(done)} images, {n_det} detections, {len(records) - len(done)} skipped files, '
          f'{seconds:.1f}s -> {osp.join(args.out_dir, "results.json")}')
    if not done:
        print('error: no image could be read', file=sys.stderr)
        return 1
    return 0


def resume_command(argv) -> str:
    """The command line that continues this run."""
    argv = [a for a in (sys.argv[1:] if argv is None else argv) if a != '--overwrite']
    return shlex.join(['python', 'tools/infer.py', *argv] +
                      ([] if '--resume' in argv else ['--resume']))


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.verbose:  # third-party deprecation notices, not about the user's run
        warnings.filterwarnings('ignore', message='torch.meshgrid')
    from mmsamantics.apis import CheckpointMismatchError
    from mmsamantics.utils import MissingResourceError
    state: dict = {}
    try:
        ctx = preflight(args)
        return run(args, ctx, state)
    except KeyboardInterrupt:
        from mmsamantics.apis.run_dir import RecordStream
        n = len(RecordStream(args.out_dir).read()) if 'records' in state else 0
        if n:
            print(f'\ninterrupted: {n} images done, kept in '
                  f'{osp.join(args.out_dir, "results.jsonl")}; continue with: '
                  f'{resume_command(argv)}', file=sys.stderr)
        else:
            print('\ninterrupted before any image was done; nothing to keep',
                  file=sys.stderr)
        return 130
    except (MissingResourceError, FileNotFoundError, ValueError, RuntimeError,
            CheckpointMismatchError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
