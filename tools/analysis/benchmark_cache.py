"""Training iterations/s of InSAM-DETR with and without the frozen-SAM cache, in one run.

    python tools/analysis/benchmark_cache.py configs/insam_detr_toy.py
    # the ViT-B geometry (1024 px, 4 levels, 300 queries, 6 decoder layers), random weights:
    python tools/analysis/benchmark_cache.py configs/insam_detr_coco.py --toy-data \
        --batch-size 1 --iters 3 --cfg-options model.backbone.checkpoint=None \
        model.mask_head.decoder.checkpoint=None

Same model, same batches (same targets and references), three ways:
  ``uncached``    the authors' way: read images, run SAM on every target and reference,
                  every iteration (in-memory reference-token cache off);
  ``token-cache`` ours without the disk cache: SAM on the targets, reference tokens kept
                  in memory after their first use (InSAMDETR.reference_store);
  ``cached``      the disk cache: no image decoded, SAM never runs, DETR head only.
An iteration = data pipeline + collate + preprocessing + forward + backward + optimizer step.
The cache is built first (for exactly the benchmarked images; its one-time cost is printed).
Prints seconds per iteration, the ratios and peak memory (RSS; CUDA when on a GPU).
"""
import argparse
import copy
import os.path as osp
import statistics
import tempfile
import time

import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper

import mmsamantics  # noqa: F401
from mmsamantics.apis import build_dataset, build_feature_cache, build_model, cache_items
from mmsamantics.datasets import FeatureCache
from mmsamantics.utils.profiling import PeakMemory
from mmsamantics.utils.config_paths import load_config

TOY_ROOT = 'data/toy_world/'


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config')
    p.add_argument('--iters', type=int, default=10, help='timed iterations per mode')
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--batch-size', type=int, default=None)
    p.add_argument('--cache-dir', default=None, help='default: a temporary directory')
    p.add_argument('--toy-data', action='store_true',
                   help='run the config on the toy world (e.g. the COCO config, no COCO here)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args()


def toy_data(cfg: Config) -> None:
    """Point the train dataset at the toy world (keeps the config's sizes and model)."""
    ds = cfg.train_dataloader.dataset
    ds.data_root = TOY_ROOT
    ds.ann_file = 'annotations/instances_train.json'
    ds.data_prefix = dict(img='train/')
    ds.metainfo = dict(classes=[f'{c} {s}' for c in ('red', 'green', 'blue')
                                for s in ('circle', 'square', 'triangle', 'star')])
    ds.ref_min_area = 16 * 16
    ds.filter_cfg = dict(filter_empty_gt=True, min_size=8)


def cached_pipeline(pipeline, cache_dir):
    """The config's train pipeline with image loading/resizing/flip/refs from the cache."""
    out = []
    for t in pipeline:
        kind = t['type']
        if kind in ('LoadImageChecked', 'LoadImageFromFile', 'Resize'):
            continue
        if kind == 'RandomFlip':
            out.append(dict(type='RandomFlipCachedFeatures', prob=t.get('prob', 0.5)))
        elif kind == 'LoadInContextReferences':
            out.append(dict(type='LoadCachedReferenceTokens', cache_dir=cache_dir))
        else:
            out.append(t)
        if kind == 'LoadAnnotations':
            out.append(dict(type='LoadCachedSAMFeatures', cache_dir=cache_dir))
    return out


def time_modes(model, modes, batches, optim, warmup):
    """Seconds per iteration of each mode, the modes interleaved batch by batch.

    Interleaving makes the ratio robust to load changes on a shared machine: every mode
    sees the same conditions. ``modes``: name -> (dataset, the model's
    :class:`ReferenceStore` in that mode, or None: no reference cache).
    """
    own, off = model.reference_store, model.reference_store.spawn(max_entries=0)
    times = {m: [] for m in modes}
    peaks = {m: 0 for m in modes}
    cuda = {m: None for m in modes}
    for i, idxs in enumerate(batches):
        for name, (dataset, store) in modes.items():
            model.reference_store = off if store is None else store
            with PeakMemory() as mem:
                sync(model)
                t = time.perf_counter()
                data = pseudo_collate([dataset[j] for j in idxs])
                model.train_step(data, optim)
                sync(model)
                dt = time.perf_counter() - t
            if i >= warmup:
                times[name].append(dt)
            peaks[name] = max(peaks[name], mem.rss_peak)
            cuda[name] = mem.cuda_peak if cuda[name] is None else max(cuda[name],
                                                                      mem.cuda_peak or 0)
    model.reference_store = own
    return times, peaks, cuda


@torch.no_grad()
def warm_token_cache(model, dataset, batches):
    """Steady state of the in-memory token cache: every reference encoded once.

    Returns a :class:`ReferenceStore` holding them (the model keeps its own store).
    """
    own, model.reference_store = model.reference_store, model.reference_store.spawn(100_000)
    try:
        for idxs in batches:
            data = model.data_preprocessor(pseudo_collate([dataset[j] for j in idxs]), False)
            model.reference_pairs(data['data_samples'])
        return model.reference_store
    finally:
        model.reference_store = own


def sync(model) -> None:
    if next(model.parameters()).is_cuda:
        torch.cuda.synchronize()


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.toy_data:
        toy_data(cfg)
    bs = args.batch_size or cfg.train_dataloader.batch_size
    model = build_model(cfg, None, args.device).train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    plain = build_dataset(cfg, 'train')
    n = (args.warmup + args.iters) * bs
    if n > len(plain):
        raise SystemExit(f'error: {n} samples needed, the dataset has {len(plain)}')
    batches = [list(range(s, s + bs)) for s in range(0, n, bs)]

    # the cache, for exactly the benchmarked targets and the references they draw
    tmp = tempfile.TemporaryDirectory() if args.cache_dir is None else None
    cache_dir = args.cache_dir or tmp.name
    refs = {r['key']: r for i in range(n)
            for r in plain.sample_references(i, plain.get_data_info(i))}
    targets = {plain.get_data_info(i)['img_path'] for i in range(n)}
    items = [dict(it, refs=[q for q in it['refs'] if q['key'] in refs])
             for it in cache_items(plain)]
    items = [dict(it, target=it['img_path'] in targets) for it in items
             if it['img_path'] in targets or it['refs']]
    t = time.perf_counter()
    stats = build_feature_cache(model, items, FeatureCache(cache_dir), batch_size=bs)
    build_s = time.perf_counter() - t
    model.train()
    ccfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ccfg.pipeline = cached_pipeline(ccfg.pipeline, cache_dir)
    from mmdet.registry import DATASETS
    cached = DATASETS.build(ccfg)

    modes = {'uncached': (plain, None),
             'token-cache': (plain, warm_token_cache(model, plain, batches)),
             'cached': (cached, None)}
    model.train()
    times, peaks, cuda = time_modes(model, modes, batches, optim, args.warmup)

    m = FeatureCache(cache_dir).meta
    print(f'\n{osp.basename(args.config)}: backbone {m["backbone"]} {m["img_size"]} px, '
          f'levels {m["channels"]}, batch {bs}, {args.iters} timed iterations '
          f'(+{args.warmup} warm-up), modes interleaved, device {args.device}, '
          f'{torch.get_num_threads()} CPU threads')
    print(f'cache built for {stats["computed"]} images in {build_s:.1f}s '
          f'({build_s / max(stats["computed"], 1):.3f}s per image, one-time)')
    base = statistics.median(times['cached'])
    print(f'{"mode":<12} {"s/iter":>8} {"it/s":>7} {"x cached":>9} {"peak RSS":>9} '
          f'{"peak CUDA":>9}')
    for name in modes:
        med = statistics.median(times[name])
        cu = f'{cuda[name] / 2**30:.2f}G' if cuda[name] is not None else '-'
        print(f'{name:<12} {med:>8.3f} {1 / med:>7.2f} {med / base:>9.2f} '
              f'{peaks[name] / 2**30:>8.2f}G {cu:>9}')
    ratio = statistics.median(times['uncached']) / base
    print(f'uncached / cached iteration time: {ratio:.1f}x')
    if tmp is not None:
        tmp.cleanup()


if __name__ == '__main__':
    main()
