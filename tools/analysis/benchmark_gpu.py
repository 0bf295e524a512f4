"""GPU benchmark at real geometry with random weights: frozen encoders, training, open mode.

    python tools/analysis/benchmark_gpu.py                       # on a GPU, ~4 min on an H100
    python tools/analysis/benchmark_gpu.py --tiny --device cpu   # the same code, tiny sizes
    python tools/analysis/benchmark_gpu.py --only encoder --json work_dirs/bench.json
    python tools/analysis/benchmark_gpu.py --only train open \
        --insam-config configs/insam_detr/insam-detr_sam3_16xb3-50e_coco.py   # SAM 3

Sections (every number is the median of ``--iters`` timed calls after ``--warmup``; peak
memory is ``torch.cuda.max_memory_allocated`` on a GPU, peak RSS on CPU):

``encoder``  SAM ViT-B / L / H image encoder at 1024 px (tiny: the 256 px toy preset),
             images/s at batch 1 and 8: fp32 with segment_anything's explicit attention,
             fp32 with SDPA, bf16 with SDPA (the encoder's ``attention`` and
             ``frozen_autocast`` switches);
``train``    one InSAM-DETR ViT-B training step (configs/insam_detr_coco.py: batch 3 at
             1024 px, up to 4 reference classes per target): references re-encoded every
             step vs their tokens kept in the in-memory reference store vs their tokens
             given with the batch (pre-encoded, ``ref_tokens``);
``open``     InSAM-DETR open-mode inference with 80 classes (80 (target, class) pairs, the
             batch that mmcv's CUDA deformable attention splits by ``im2col_step`` = 64;
             tiny: 8), reference tokens encoded once (as from a reference bank);
``matcher``  the training-free matcher (configs/matcher_coco.py: SAM ViT-H + DINOv2 ViT-L),
             images/s; random weights give random proposals, so this is an order of
             magnitude, not the speed on real images.

Data: a small synthetic toy world written to a temporary folder (no download, no COCO);
the COCO configs' pipelines resize it to their geometry. Prints one markdown table and
writes the rows as JSON (``--json``).
"""
import argparse
import copy
import inspect
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext

import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData

import mmsamantics  # noqa: F401
from mmsamantics.models.backbones.sam_image_encoder import SAMImageEncoder
from mmsamantics.utils.profiling import PeakMemory
from mmsamantics_toy.toy_world import make_toy_world

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SECTIONS = ('encoder', 'train', 'open', 'matcher')
GEOMETRY = {  # (encoder presets, batch sizes, InSAM-DETR config, matcher config)
    'real': (('vit_b', 'vit_l', 'vit_h'), (1, 8), 'configs/insam_detr_coco.py',
             'configs/matcher_coco.py'),
    'tiny': (('tiny', ), (1, 2), 'configs/insam_detr_toy.py', 'configs/matcher_toy.py')}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--tiny', action='store_true',
                   help='toy presets and configs (a CPU check of the script itself)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--only', nargs='+', choices=SECTIONS, default=list(SECTIONS))
    p.add_argument('--iters', type=int, default=None, help='timed calls (default 5; tiny 2)')
    p.add_argument('--warmup', type=int, default=1)
    p.add_argument('--json', help='also write the rows to this JSON file')
    p.add_argument('--insam-config',
                   help='the InSAM-DETR config of the train and open sections (default: '
                        'SAM ViT-B, configs/insam_detr_coco.py; e.g. configs/insam_detr/'
                        'insam-detr_sam3_16xb3-50e_coco.py for SAM 3)')
    return p.parse_args(argv)


class Bench:
    """Times callables on one device; collects the table rows."""

    def __init__(self, device: torch.device, iters: int, warmup: int) -> None:
        self.device, self.iters, self.warmup = device, iters, warmup
        self.rows = []

    def sync(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def time(self, fn, prepare=None) -> tuple:
        """(median seconds per call, peak bytes) of ``fn(prepare())`` (``prepare``, untimed,
        gives each call its input; None: ``fn()``); (None, None) when out of memory."""
        times = []
        try:
            with PeakMemory() as mem:
                for i in range(self.warmup + self.iters):
                    arg = None if prepare is None else prepare()
                    self.sync()
                    t = time.perf_counter()
                    fn() if prepare is None else fn(arg)
                    self.sync()
                    if i >= self.warmup:
                        times.append(time.perf_counter() - t)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            return None, None
        peak = mem.cuda_peak if self.device.type == 'cuda' else mem.rss_peak
        return statistics.median(times), peak

    def add(self, what: str, mode: str, batch: int, seconds, peak, unit: str = 'img/s',
            per: int = None, note: str = '') -> None:
        per = batch if per is None else per
        row = dict(what=what, mode=mode, batch=batch, ms=None if seconds is None else
                   round(seconds * 1e3 / per, 2), rate=None if seconds is None else
                   round(per / seconds, 2), unit=unit, peak_gib=None if peak is None else
                   round(peak / 2**30, 2), note=note or ('out of memory' if seconds is None
                                                         else ''))
        self.rows.append(row)
        print(f'  {what} | {mode} | batch {batch}: {row["rate"]} {unit}, '
              f'peak {row["peak_gib"]} GiB {row["note"]}', flush=True)


def encoder_modes(device: torch.device) -> dict:
    """mode name -> (constructor kwargs, context of the forward call).

    The encoder's own switches when it has them (``attention`` 'explicit' = segment_anything's
    attention, 'sdpa'; ``frozen_autocast``), else ``torch.autocast`` around the call. The
    whole batch goes through in one call (``micro_batch=0``): batch 8 means 8.
    """
    params = inspect.signature(SAMImageEncoder.__init__).parameters
    whole = dict(micro_batch=0) if 'micro_batch' in params else {}
    if 'attention' in params and 'frozen_autocast' in params:
        return {'fp32 explicit attention': (dict(whole, attention='explicit',
                                                 frozen_autocast='off'), nullcontext),
                'fp32 SDPA': (dict(whole, attention='sdpa', frozen_autocast='off'),
                              nullcontext),
                'bf16 SDPA': (dict(whole, attention='sdpa', frozen_autocast='bf16'),
                              nullcontext)}
    return {'fp32': (whole, nullcontext),
            'bf16 autocast': (whole, lambda: torch.autocast(device.type, dtype=torch.bfloat16))}


def bench_encoders(bench: Bench, presets, batches) -> None:
    for preset in presets:
        for mode, (kwargs, ctx) in encoder_modes(bench.device).items():
            with torch.device(bench.device):  # random init directly on the device
                enc = SAMImageEncoder(preset=preset, checkpoint=None, out_indices=(),
                                      frozen=True, **kwargs).eval()
            for b in batches:
                x = torch.randn(b, 3, enc.img_size, enc.img_size, device=bench.device)

                def run(enc=enc, x=x, ctx=ctx):  # bound now: the loop rebinds them
                    with torch.no_grad(), ctx():
                        enc(x)
                bench.add(f'SAM {preset} encoder {enc.img_size}px', mode, b, *bench.time(run))
            del enc
            if bench.device.type == 'cuda':
                torch.cuda.empty_cache()


def _no_checkpoints(node) -> None:
    """Random weights: every ``checkpoint`` of a model config set to None."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == 'checkpoint':
                node[k] = None
            else:
                _no_checkpoints(v)
    elif isinstance(node, list):
        for v in node:
            _no_checkpoints(v)


def load_config(rel: str, toy_root: str) -> Config:
    """A config with random weights and its datasets on the toy world in ``toy_root``."""
    cfg = Config.fromfile(osp.join(REPO, rel))
    _no_checkpoints(cfg.model)
    toy = Config.fromfile(osp.join(REPO, 'configs/_base_/datasets/toy_world_in_context.py'))
    for loader, ds in (('train_dataloader', toy.toy_train), ('test_dataloader', toy.toy_val)):
        if cfg.get(loader) is not None:
            cfg[loader].dataset = dict(copy.deepcopy(ds), data_root=toy_root,
                                       pipeline=cfg[loader].dataset.pipeline)
    return cfg


def build(cfg: Config, device: torch.device):
    from mmdet.registry import MODELS
    torch.manual_seed(0)
    return MODELS.build(cfg.model).to(device)  # constructors' random init: speed only


def bench_train(bench: Bench, rel: str, toy_root: str) -> None:
    """Training steps of prepared batches (collated outside the timed region; a timed step
    = preprocessing + forward + backward + optimizer step) in three ways: references
    re-encoded by SAM every step; their tokens in the in-memory reference store; their
    tokens given with the batch (``ref_tokens``, as a pre-encoded dataset gives them)."""
    from mmdet.registry import DATASETS
    cfg = load_config(rel, toy_root)
    bs = cfg.train_dataloader.batch_size
    model = build(cfg, bench.device).train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    n = bench.warmup + bench.iters
    batches = [pseudo_collate([dataset[(s * bs + j) % len(dataset)] for j in range(bs)])
               for s in range(n)]
    refs = statistics.mean(len(d.metainfo['ref_keys']) for d in batches[0]['data_samples'])
    own = model.reference_store
    warm = own.spawn(max_entries=100_000)
    model.reference_store = warm
    with torch.no_grad():  # every reference of the benchmarked batches encoded once
        for data in batches:
            model.reference_pairs(model.data_preprocessor(copy.deepcopy(data),
                                                          False)['data_samples'])

    def with_tokens(data):
        for ds in data['data_samples']:
            ds.ref_tokens = warm.get(list(ds.metainfo['ref_keys']), device='cpu')
            ds.set_metainfo(dict(ref_tokens_signature=warm.signature))
            del ds.ref_inputs
        return data
    modes = (('references re-encoded', own.spawn(max_entries=0), lambda d: d),
             ('reference tokens cached', warm, lambda d: d),
             ('pre-encoded reference tokens', own.spawn(max_entries=0), with_tokens))
    for mode, store, prepare in modes:
        model.reference_store = store
        it = iter(range(10**9))
        seconds, peak = bench.time(
            lambda data: model.train_step(data, optim),
            lambda: prepare(copy.deepcopy(batches[next(it) % n])))
        bench.add(f'InSAM-DETR train step ({osp.basename(rel)})', mode, bs, seconds, peak,
                  unit='it/s', per=1, note=f'{refs:.1f} refs/target')
    model.reference_store = own


def open_mode_batch(model, dataset, num_classes: int):
    """One target whose references are repeated into ``num_classes`` distinct classes."""
    data = model.data_preprocessor(pseudo_collate([dataset[0]]), False)
    ds = data['data_samples'][0]
    n = len(ds.ref_instances)
    if n == 0:
        raise RuntimeError('the first toy image drew no reference')
    idx = torch.arange(num_classes, device=ds.ref_inputs.device) % n
    ds.ref_inputs = ds.ref_inputs[idx]
    ds.ref_instances = InstanceData(bboxes=ds.ref_instances.bboxes[idx],
                                    labels=torch.arange(num_classes, device=idx.device))
    ds.set_metainfo(dict(ref_keys=[f'open{i}' for i in range(num_classes)]))
    return data


def bench_open(bench: Bench, rel: str, toy_root: str, num_classes: int) -> None:
    from mmdet.registry import DATASETS
    cfg = load_config(rel, toy_root)
    model = build(cfg, bench.device).eval()
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    data = open_mode_batch(model, dataset, num_classes)
    with torch.no_grad():  # references encoded once, as from a bank
        model.predict(data['inputs'], data['data_samples'])

    def run():
        with torch.no_grad():
            model.predict(data['inputs'], data['data_samples'])
    bench.add(f'InSAM-DETR open mode ({osp.basename(rel)})', f'{num_classes} classes', 1,
              *bench.time(run))


def bench_matcher(bench: Bench, rel: str, toy_root: str) -> None:
    from mmdet.registry import DATASETS
    cfg = load_config(rel, toy_root)
    model = build(cfg, bench.device).eval()
    dataset = DATASETS.build(cfg.test_dataloader.dataset)
    data = pseudo_collate([dataset[0]])

    def run():
        with torch.no_grad():
            model.test_step(data)
    bench.add(f'matcher ({osp.basename(rel)})', 'oracle, random weights', 1, *bench.time(run))


def markdown(rows, device: str) -> str:
    lines = [f'Device: {device}; torch {torch.__version__}; random weights', '',
             '| what | mode | batch | rate | ms per image / step | peak GiB | note |',
             '|---|---|---|---|---|---|---|']
    for r in rows:
        rate = '-' if r['rate'] is None else f'{r["rate"]} {r["unit"]}'
        lines.append(f'| {r["what"]} | {r["mode"]} | {r["batch"]} | {rate} | '
                     f'{"-" if r["ms"] is None else r["ms"]} | '
                     f'{"-" if r["peak_gib"] is None else r["peak_gib"]} | {r["note"]} |')
    return '\n'.join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    init_default_scope('mmdet')
    device = torch.device(args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        sys.exit('error: --device cuda but torch sees no GPU: use --tiny --device cpu')
    presets, batches, insam, matcher = GEOMETRY['tiny' if args.tiny else 'real']
    insam = args.insam_config or insam
    bench = Bench(device, args.iters or (2 if args.tiny else 5), args.warmup)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'
    with tempfile.TemporaryDirectory() as toy_root:
        # four classes per image: four references per training target, as on COCO
        make_toy_world(toy_root, seed=0, num_train=24, num_val=2, instances_range=(4, 6),
                       classes_range=(4, 4))
        if 'encoder' in args.only:
            bench_encoders(bench, presets, batches)
        if 'train' in args.only:
            bench_train(bench, insam, toy_root)
        if 'open' in args.only:
            bench_open(bench, insam, toy_root, 8 if args.tiny else 80)
        if 'matcher' in args.only:
            bench_matcher(bench, matcher, toy_root)
    print('\n' + markdown(bench.rows, f'{name} ({device})'))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(dict(device=name, torch=torch.__version__, tiny=args.tiny,
                           rows=bench.rows), f, indent=1)


if __name__ == '__main__':
    main()
