"""Per-image time of the training-free matcher: dense DINOv2 pooling vs per-crop encoding.

    python tools/analysis/benchmark_matcher.py configs/matcher_toy.py
    # real geometry (SAM ViT-B at 1024 px, DINOv2 ViT-L/14 at 518 px, 224 px crops), random
    # weights, on toy images:
    python tools/analysis/benchmark_matcher.py configs/matcher_coco.py --toy-data \
        --images 3 --cfg-options model.backbone.preset=vit_b \
        model.mask_head.decoder.preset=vit_b model.backbone.checkpoint=None \
        model.mask_head.decoder.checkpoint=None model.feature_extractor.checkpoint=None

Same model, same images, the same EXACTLY ``--proposals`` SAM proposals per image (filters
off, top proposals by predicted IoU), two ways of describing them:
  ``dense``  one DINOv2 pass over the image, each proposal = masked average of the dense
             token map (ours);
  ``crop``   one DINOv2 pass per proposal box crop, masked average inside the crop (InsDet).
Modes are interleaved image by image so machine load affects both alike. Prints seconds per
image by stage (sam_encoder, proposals, features, references, matching, masks), the
feature-stage and end-to-end ratios, and peak memory; writes them to --out (JSON).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import time
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List

import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate

import mmsamantics  # noqa: F401
from mmsamantics.apis import build_dataset, build_model
from mmsamantics.utils.profiling import PeakMemory
from mmsamantics.utils.config_paths import load_config

TOY_ROOT = 'data/toy_world/'
STAGES = ('sam_encoder', 'proposals', 'features', 'references', 'matching', 'masks')


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config')
    p.add_argument('--images', type=int, default=8, help='timed images per mode')
    p.add_argument('--warmup', type=int, default=1, help='untimed images per mode first')
    p.add_argument('--proposals', type=int, default=100, help='proposals per image')
    p.add_argument('--toy-data', action='store_true',
                   help='run the config on the toy world images (e.g. the COCO config)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--out', default=None, help='JSON file for the results')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args()


def toy_data(cfg: Config) -> None:
    """Point the test dataset at the toy world (keeps the config's sizes and model)."""
    ds = cfg.test_dataloader.dataset
    ds.update(data_root=TOY_ROOT, ann_file='annotations/instances_val.json',
              data_prefix=dict(img='val/'), ref_ann_file='annotations/instances_train.json',
              ref_img_prefix='train/', ref_min_area=16 * 16, ref_set_file=None,
              metainfo=dict(classes=[f'{c} {s}' for c in ('red', 'green', 'blue')
                                     for s in ('circle', 'square', 'triangle', 'star')]))


def exact_proposals(cfg: Config, n: int) -> None:
    """Filters off and enough grid points that every image yields exactly ``n`` proposals."""
    pg = cfg.model.proposal_generator
    per_point = 3 if pg.get('multimask_output', True) else 1
    side = max(pg.get('points_per_side', 32), int((n / per_point) ** 0.5) + 1)
    pg.update(points_per_side=side, pred_iou_thresh=-1e9, stability_score_thresh=-1e9,
              nms_thresh=1.0, min_mask_area=0, max_proposals=n)
    cfg.model.test_cfg = dict(cfg.model.get('test_cfg') or {}, nms_thr=1.0, max_per_img=n)


def _timed(fn: Callable, stage: str, times: Dict[str, float], cuda: bool) -> Callable:
    def run(*args, **kwargs):
        if cuda:
            torch.cuda.synchronize()
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            if cuda:
                torch.cuda.synchronize()
            times[stage] = times.get(stage, 0.0) + time.perf_counter() - t
    return run


@contextmanager
def stage_timer(model, times: Dict[str, float]) -> Iterator[None]:
    """Within the block, the seconds of each stage of the matcher's ``predict`` are added to
    ``times``, by wrapping the callable each stage runs (a GPU is synchronised around each;
    the model itself holds no timer)."""
    targets = [('sam_encoder', model.backbone, 'forward'),
               ('references', model, 'reference_features'),
               ('proposals', model, 'proposal_generator'),
               ('features', model, 'region_features'), ('matching', model, 'match'),
               ('masks', model.mask_head, 'postprocess')]
    cuda = next(model.parameters()).is_cuda
    saved = []
    for stage, obj, name in targets:
        saved.append((obj, name, vars(obj).get(name)))
        setattr(obj, name, _timed(getattr(obj, name), stage, times, cuda))
    try:
        yield
    finally:
        for obj, name, own in saved:
            if own is None:
                delattr(obj, name)  # the class's method again
            else:
                setattr(obj, name, own)


def time_image(model, data: dict, mode: str) -> Dict[str, float]:
    model.feature_mode = mode
    model.reference_store.reset()  # references are cached once per key: time the target alone
    model.reference_features(data['data_samples'])  # (each mode encodes its own)
    times: Dict[str, float] = {}
    with torch.no_grad(), stage_timer(model, times):
        out = model.predict(data['inputs'], data['data_samples'])
    return dict(times, proposals_kept=len(out[0].pred_instances))


def main() -> None:
    args = parse_args()
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.toy_data:
        toy_data(cfg)
    exact_proposals(cfg, args.proposals)
    torch.set_grad_enabled(False)
    model = build_model(cfg, None, args.device)
    dataset = build_dataset(cfg, 'test')
    times: Dict[str, List[Dict[str, float]]] = dict(dense=[], crop=[])
    peaks = {}
    for i in range(args.warmup + args.images):
        batch = model.data_preprocessor(pseudo_collate([dataset[i % len(dataset)]]), False)
        for mode in ('dense', 'crop'):
            with PeakMemory() as mem:
                t = time_image(model, batch, mode)
            peaks[mode] = max(peaks.get(mode, 0), mem.rss_peak if mem.cuda_peak is None
                              else mem.cuda_peak)
            print(f'image {i} ({"warm-up" if i < args.warmup else "timed"}) {mode}: '
                  + ', '.join(f'{k} {v:.2f}s' for k, v in t.items() if k in STAGES),
                  flush=True)
            if i >= args.warmup:
                if t['proposals_kept'] != args.proposals:
                    raise RuntimeError(f'image {i} gave {t["proposals_kept"]} proposals, not '
                                       f'{args.proposals}: raise points_per_side')
                times[mode].append(t)
    report = dict(config=args.config, device=args.device, images=args.images,
                  proposals=args.proposals, crop_size=model.crop_size,
                  dinov2_size=model.feature_extractor.img_size,
                  sam_size=model.backbone.img_size, modes={})
    lines = [f'{args.images} images x {args.proposals} proposals, {args.device}, SAM '
             f'{model.backbone.preset} @{model.backbone.img_size}, DINOv2 '
             f'{model.feature_extractor.preset} @{model.feature_extractor.img_size}, crops '
             f'@{model.crop_size}', '',
             '| mode | ' + ' | '.join(STAGES) + ' | total s/img | peak memory |',
             '|---' * (len(STAGES) + 3) + '|']
    for mode, ts in times.items():
        stage = {s: statistics.mean(t.get(s, 0.0) for t in ts) for s in STAGES}
        total = sum(stage.values())
        report['modes'][mode] = dict(stage_s=stage, total_s=total, peak_bytes=peaks[mode])
        lines.append(f'| {mode} | ' + ' | '.join(f'{stage[s]:.3f}' for s in STAGES)
                     + f' | {total:.3f} | {peaks[mode] / 2**30:.2f} GiB |')
    d, c = report['modes']['dense'], report['modes']['crop']
    report['feature_ratio'] = c['stage_s']['features'] / d['stage_s']['features']
    report['total_ratio'] = c['total_s'] / d['total_s']
    lines += ['', f'features stage: crop / dense = {report["feature_ratio"]:.1f}x '
              f'(target >= 10x); end to end: {report["total_ratio"]:.2f}x']
    print('\n'.join(lines))
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(report, f, indent=1)


if __name__ == '__main__':
    main()
