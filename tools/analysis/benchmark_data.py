"""Time and peak memory of the training data path at COCO size: ``InContextCocoDataset`` on a
train2017-sized annotation file, its reference pool, and the loading of a target and its
references at 1024 px per dataloader worker.

    python tools/analysis/benchmark_data.py                       # 118,287 images
    python tools/analysis/benchmark_data.py --images 20000 --iters 100

The annotation files are COCO-shaped synthetic ones (``tools/misc/make_synthetic_coco.py``,
kept in ``--work-dir`` and reused); ``--ann`` measures a real file (e.g. COCO's
``instances_train2017.json``) instead. Each part runs in its own process, so its peak memory
(RSS) is its own:

``init``  the dataset built as the COCO config builds it (``mode='train'``, ``filter_cfg``,
          ``ref_min_area``): loading the file, one record per image, the reference pool,
          mmengine's serialization of the records; time of each stage, peak RSS, what
          the records and the pool hold afterwards, and the memory a forked dataloader
          worker copies from the dataset as it prepares ``--draws`` samples and reads every
          reference once (copy-on-write: Linux's private dirty pages).
``load``  ``dataset[i]`` with the ViT-B config's training pipeline (read, flip and resize
          the target to 1024 px, read and resize each reference, pack) on ``--load-images``
          images that exist on disk, in one process with one thread: one dataloader
          worker. Samples/s and images/s; the rate of ``--workers`` workers is extrapolated
          as that many times one worker's (each worker has a core of its own).
"""
import argparse
import gc
import json
import os.path as osp
import pickle
import sys
import time
import tracemalloc
from typing import Callable, Dict, List, Optional

from mmsamantics.utils.profiling import (PeakMemory, current_rss_bytes, print_result,
                                         run_measured)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'configs/insam_detr/insam-detr_sam-vit-b_16xb3-50e_coco.py'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--images', type=int, default=118287, help='images of the init file')
    p.add_argument('--ann', default=None, help='a COCO annotation file for init instead')
    p.add_argument('--load-images', type=int, default=200,
                   help='images (with pixels) of the loading benchmark')
    p.add_argument('--iters', type=int, default=60, help='timed samples of the loading part')
    p.add_argument('--draws', type=int, default=5000,
                   help='samples a forked worker prepares in the init part')
    p.add_argument('--workers', type=int, default=8, help='workers of the extrapolation')
    p.add_argument('--batch', type=int, default=3, help='samples per iteration (the config: 3)')
    p.add_argument('--parts', nargs='+', default=['init', 'load'], choices=['init', 'load'])
    p.add_argument('--work-dir', default='work_dirs/benchmark_data')
    p.add_argument('--out', default=None, help='JSON file for the results')
    p.add_argument('--child', default=None, help=argparse.SUPPRESS)
    p.add_argument('--file', default=None, help=argparse.SUPPRESS)
    p.add_argument('--img-dir', default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def synthetic_file(work_dir: str, images: int, pixels: bool) -> str:
    """The synthetic annotation file of ``images`` images in ``work_dir`` (made once)."""
    name = f'synthetic_{images}{"_pixels" if pixels else ""}'
    ann = osp.join(work_dir, name + '.json')
    if not osp.isfile(ann):
        sys.path.insert(0, osp.join(REPO, 'tools', 'misc'))
        from make_synthetic_coco import draw_images, make_synthetic_coco
        from mmsamantics.utils.files import write_json_atomic
        t = time.perf_counter()
        doc = make_synthetic_coco(images, seed=0)
        if pixels:
            draw_images(doc, osp.join(work_dir, name), images)
        write_json_atomic(ann, doc)
        print(f'{ann}: {len(doc["annotations"]):,} annotations '
              f'({time.perf_counter() - t:.0f}s, once)', flush=True)
    return ann


def timed(cls: type, name: str, spent: Dict[str, float]) -> None:
    """Wrap ``cls.name`` so that its seconds add up in ``spent[name]``."""
    fn: Callable = getattr(cls, name)

    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - t
    setattr(cls, name, wrapper)


def dataset_cfg(ann: str, img_dir: str, pipeline: list) -> dict:
    """The COCO config's training dataset on ``ann`` / ``img_dir``."""
    from mmsamantics.utils.config_paths import load_config
    cfg = load_config(osp.join(REPO, CONFIG))
    ds = cfg.train_dataloader.dataset
    ds.update(data_root='', ann_file=osp.abspath(ann), data_prefix=dict(img=img_dir + '/'),
              pipeline=pipeline)
    return ds


def run_init(args: argparse.Namespace) -> dict:
    """Dataset init on ``args.file``: total and per-stage time, peak RSS."""
    from mmengine.dataset import BaseDataset
    from mmdet.registry import DATASETS
    from mmsamantics.datasets import InContextCocoDataset
    spent: Dict[str, float] = {}
    timed(InContextCocoDataset, 'load_data_list', spent)
    timed(InContextCocoDataset, '_build_ref_pool', spent)
    timed(BaseDataset, '_serialize_data', spent)
    cfg = dataset_cfg(args.file, 'images', [])
    with PeakMemory() as mem:
        t = time.perf_counter()
        ds = DATASETS.build(cfg)
        seconds = time.perf_counter() - t
    gc.collect()
    rss_after = current_rss_bytes()
    # what the reference pool takes (the allocations of a copy): Python objects are what
    # each dataloader worker copies page by page as it reads them (reference counts are
    # writes); a serialized pool is a few buffers that no read writes
    tracemalloc.start()
    pool_copy = pickle.loads(pickle.dumps(ds.ref_pool, protocol=pickle.HIGHEST_PROTOCOL))
    pool_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del pool_copy
    return dict(part='init', seconds=seconds, stages=spent, rss_peak=mem.rss_peak,
                rss_after=rss_after, pool_bytes=pool_bytes, records_bytes=ds.data_bytes.nbytes,
                images=len(ds), pool=sum(len(v) for v in ds.ref_pool.values()),
                draws=args.draws, worker_private=forked_worker_private(ds, args.draws))


def private_dirty_bytes() -> int:
    """This process's private dirty memory (Linux): pages it wrote after a fork."""
    with open('/proc/self/smaps_rollup') as f:
        return sum(int(ln.split()[1]) * 1024 for ln in f if ln.startswith('Private_Dirty'))


def _draw(ds, n: int, queue) -> None:
    before = private_dirty_bytes()
    for i in range(n):
        ds.prepare_data(i % len(ds))  # the record and its references (empty pipeline)
    for refs in ds.ref_pool.values():  # what random draws touch over a long run
        for _ in refs:
            pass
    queue.put(private_dirty_bytes() - before)


def forked_worker_private(ds, n: int) -> int:
    """Bytes a forked dataloader worker copies from the dataset while it prepares ``n``
    samples and reads every reference of the pool once (copy-on-write)."""
    import multiprocessing as mp
    ctx = mp.get_context('fork')
    queue = ctx.Queue()
    worker = ctx.Process(target=_draw, args=(ds, n, queue))
    worker.start()
    out = queue.get()
    worker.join()
    return out


def run_load(args: argparse.Namespace) -> dict:
    """Samples/s of ``dataset[i]`` with the ViT-B training pipeline, one thread."""
    import cv2
    import torch
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    from mmsamantics.utils.config_paths import load_config
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    init_default_scope('mmdet')
    pipeline = load_config(osp.join(REPO, CONFIG)).train_dataloader.dataset.pipeline
    ds = DATASETS.build(dataset_cfg(args.file, args.img_dir, pipeline))
    n, images = min(args.iters, len(ds)), 0
    ds[0]  # warm-up: imports, first file reads
    with PeakMemory() as mem:
        t = time.perf_counter()
        for i in range(1, n + 1):
            sample = ds[i % len(ds)]
            images += 1 + len(sample['data_samples'].ref_instances)
        seconds = time.perf_counter() - t
    return dict(part='load', seconds=seconds, samples=n, images=images,
                samples_per_s=n / seconds, images_per_s=images / seconds,
                rss_peak=mem.rss_peak)


def child(part: str, args: argparse.Namespace, **files: str) -> dict:
    """Run ``part`` in its own process; its result dict."""
    cmd = [sys.executable, osp.abspath(__file__), '--child', part, '--iters', str(args.iters),
           '--draws', str(args.draws)]
    for k, v in files.items():
        cmd += [f'--{k.replace("_", "-")}', v]
    return run_measured(cmd, f'part {part}', dict(PYTHONPATH=REPO, OMP_NUM_THREADS='1'), REPO)


def init_row(r: dict) -> str:
    """The table row of the ``init`` part."""
    stages = ', '.join(f'{k.strip("_")} {v:.1f} s' for k, v in r['stages'].items())
    return (f'| dataset init | {r["seconds"]:.1f} s | {r["rss_peak"] / 1e9:.2f} | '
            f'{r["images"]:,} images, reference pool of {r["pool"]:,} instances ({stages}); '
            f'after init: RSS {r["rss_after"] / 1e9:.2f} GB, records (serialized) '
            f'{r["records_bytes"] / 1e9:.2f} GB, reference pool {r["pool_bytes"] / 1e9:.2f} '
            f'GB; a forked worker copies {r["worker_private"] / 1e9:.3f} GB (preparing '
            f'{r["draws"]:,} samples, then reading every reference once) |')


def load_row(r: dict, workers: int, batch: int) -> str:
    """The table row of the ``load`` part, with the rate of ``workers`` workers."""
    rate = r['samples_per_s']
    return (f'| loading, 1 worker | {rate:.2f} samples/s ({r["images_per_s"]:.1f} images/s) '
            f'| {r["rss_peak"] / 1e9:.2f} | {r["samples"]} samples, {r["images"]} images at '
            f'1024 px; {workers} workers: {workers * rate:.1f} samples/s = '
            f'{workers * rate / batch:.1f} iterations/s of batch {batch} (extrapolated) |')


def table(rows: List[dict], workers: int, batch: int) -> str:
    """The parts' numbers as a markdown table."""
    head = ['| part | measured | peak RSS (GB) | detail |', '|---|---|---|---|']
    return '\n'.join(head + [init_row(r) if r['part'] == 'init' else
                              load_row(r, workers, batch) for r in rows])


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    parts = dict(init=run_init, load=run_load)
    if args.child in parts:  # one part, in the process main() started for it
        print_result(parts[args.child](args))
        return
    work_dir = osp.join(REPO, args.work_dir) if not osp.isabs(args.work_dir) else args.work_dir
    rows = []
    if 'init' in args.parts:
        ann = args.ann or synthetic_file(work_dir, args.images, pixels=False)
        rows.append(child('init', args, file=ann))
    if 'load' in args.parts:
        ann = synthetic_file(work_dir, args.load_images, pixels=True)
        rows.append(child('load', args, file=ann, img_dir=ann[:-len('.json')]))
    print(table(rows, args.workers, args.batch))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(dict(args=vars(args), rows=rows), f, indent=1)


if __name__ == '__main__':
    main()
