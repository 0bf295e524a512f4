"""Speed of the annotation tool (tools/annotate.py): embedding throughput and click -> mask.

    python tools/analysis/benchmark_annotate.py
    # the ViT-B geometry (1024 px), random weights, and the tiny toy preset:
    python tools/analysis/benchmark_annotate.py --configs configs/insam_detr_coco.py \
        configs/insam_detr_toy.py --cfg-options model.backbone.checkpoint=None \
        model.mask_head.decoder.checkpoint=None

For each config (an in-context model whose SAM the tool uses), on the toy world's images:
  ``embed``   one SAM image-encoder pass per image, as the background job does (images/s);
  ``cache``   the first click after a restart: the embedding read from the disk cache;
  ``click``   the server's work for one request with the embedding cached, timed inside
              the server (``AnnotationSession.segment``: decode, post-process to the image
              size, encode for the page): a single click (SAM's single mask + its 3
              multimask candidates), 3 clicks, a box;
  ``http``    the same single click as a full request through the web API (FastAPI test
              client, in-process: JSON in and out, no network).
Times are medians over --repeats requests in milliseconds (embeddings: seconds per image),
written ``wall/cpu``: the wall-clock time a user waits and the process CPU time, which is
what the request costs when other jobs share the CPU.
"""
import argparse
import os
import os.path as osp
import statistics
import sys
import tempfile
import time

import torch
from mmengine.config import DictAction

TOY_VAL = 'data/toy_world/val'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--configs', nargs='+',
                   default=['configs/insam_detr_toy.py', 'configs/insam_detr_coco.py'])
    p.add_argument('--img-dir', default=TOY_VAL, help='images to embed and click on')
    p.add_argument('--images', type=int, default=3, help='images embedded per config')
    p.add_argument('--repeats', type=int, default=20, help='requests per measurement')
    p.add_argument('--threads', type=int, default=None, help='torch CPU threads')
    p.add_argument('--device', default='cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='applied to every config (e.g. random SAM weights: '
                        'model.backbone.checkpoint=None model.mask_head.decoder.checkpoint=None)')
    return p.parse_args(argv)


def median_ms(fn, repeats: int) -> str:
    """``wall/cpu``: median wall-clock and process CPU milliseconds of ``fn`` (on a shared
    machine the CPU time is what the request costs, the wall time what a user waited)."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return f'{statistics.median(wall) * 1e3:.1f}/{statistics.median(cpu) * 1e3:.1f}'


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def bench_config(config: str, args) -> dict:
    from fastapi.testclient import TestClient
    from mmsamantics.app import AnnotationSession
    from mmsamantics.app.server import create_app
    with tempfile.TemporaryDirectory() as tmp:
        session = AnnotationSession.from_config(
            args.img_dir, osp.join(tmp, 'ann.json'), config, device=args.device,
            cfg_options=args.cfg_options, cache_root=osp.join(tmp, 'cache'),
            classes=['object'], report=lambda *a: None)
        model = session.segmenter.model
        seg, names = session.segmenter, session.folder.names[:args.images]
        paths = [session.folder.path(n) for n in names]
        log(f'{config}: model built; embedding {len(paths)} images')
        seg.embedding(paths[0])  # warm-up (first-call allocations)
        seg._memory.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        for p in paths[1:] + paths[:1]:
            seg._compute(p)
        embed_s = (time.perf_counter() - t0) / len(paths)
        embed_cpu = (time.process_time() - c0) / len(paths)
        seg._memory.clear()
        log(f'{config}: clicks')
        cache_ms = median_ms(lambda: seg._read_cached(paths[0]), min(args.repeats, 5))
        seg.embedding(paths[0])
        name = names[0]
        h, w = session.folder.sizes[name]
        c = [w / 2, h / 2, 1]
        client = TestClient(create_app(session))
        body = dict(image=name, points=[c])
        return dict(
            config=osp.basename(config), backbone=type(model.backbone).__name__,
            input=seg.img_size, image=f'{w}x{h}',
            embed_s=f'{embed_s:.3f}/{embed_cpu:.3f}', embed_per_s=round(1 / embed_s, 2),
            cache_ms=cache_ms,
            click_ms=median_ms(lambda: session.segment(name, [c]), args.repeats),
            clicks3_ms=median_ms(lambda: session.segment(
                name, [c, [w / 4, h / 4, 0], [w / 3, h / 2, 1]]), args.repeats),
            box_ms=median_ms(lambda: session.segment(name, [], [w / 4, h / 4, w * .75, h * .75]),
                             args.repeats),
            http_ms=median_ms(lambda: client.post('/api/segment', json=body), args.repeats))


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import mmsamantics  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    rows = [bench_config(c, args) for c in args.configs]
    print(f'torch threads: {torch.get_num_threads()}, device: {args.device}, load average '
          f'{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; times are wall/CPU')
    keys = list(rows[0])
    print(' | '.join(keys))
    for r in rows:
        print(' | '.join(str(r[k]) for k in keys))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
