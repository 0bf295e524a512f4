"""Time of SAM box-prompt mask decoding: one box per call vs chunks vs all boxes at once.

    python tools/analysis/benchmark_box_decoding.py            # ViT-B geometry, 100 boxes
    python tools/analysis/benchmark_box_decoding.py --preset tiny --boxes 30 --repeats 1

Random weights, one image: a (1, D, h, w) random embedding (ViT-B geometry: D = 256,
h = w = 64) and N random boxes, decoded by :class:`SAMBoxPromptMaskHead.decode_boxes` with
``boxes_per_call`` = 1 (the loop), each ``--chunks`` size, and N (one batched call). Modes
are interleaved ``--repeats`` times (the fastest repeat counts) so machine load affects all
alike; every mode's logits are checked against the loop's. Prints seconds per mode (CPU
time of the process on a CPU, robust to other load; wall time on a GPU), the
ratio to the loop and the peak memory (process RSS increase on the CPU, CUDA allocations on
a GPU), the numbers behind ``BOXES_PER_CALL``.
"""
import argparse
import time

import torch

import mmsamantics  # noqa: F401
from mmdet.registry import MODELS
from mmsamantics.models.sam import get_preset
from mmsamantics.utils.profiling import PeakMemory, current_rss_bytes


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--preset', default='vit_b', help='SAM preset (geometry only)')
    p.add_argument('--boxes', type=int, default=100, help='N, boxes on the image')
    p.add_argument('--chunks', type=int, nargs='+', default=[4, 8, 16, 32],
                   help='boxes per call to time besides 1 and N')
    p.add_argument('--repeats', type=int, default=2, help='interleaved rounds per mode')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(0)
    head = MODELS.build(dict(type='SAMBoxPromptMaskHead', decoder=dict(
        type='SAMPromptDecoder', preset=args.preset))).to(device)
    p = get_preset(args.preset)
    side, s = p['img_size'] // p['patch_size'], p['img_size']
    emb = torch.randn(1, p['prompt_embed_dim'], side, side, device=device)
    xy = torch.rand(args.boxes, 2, 2, device=device).sort(1).values * s
    boxes = xy.transpose(1, 2).reshape(-1, 4)[:, [0, 2, 1, 3]]  # (N, 4) xyxy
    sizes = sorted({1, args.boxes, *[c for c in args.chunks if c < args.boxes]})
    # CPU: this process's CPU time (other processes on a shared machine barely change it);
    # GPU: wall time after a synchronisation
    clock = time.perf_counter if device.type == 'cuda' else time.process_time
    times = {n: [] for n in sizes}
    peaks, ref = {}, None
    with torch.no_grad():
        head.boxes_per_call = 1
        head.decode_boxes(emb, boxes[:2])  # warm-up
        for _ in range(args.repeats):
            for n in sizes:
                head.boxes_per_call = n
                base = current_rss_bytes()
                with PeakMemory() as mem:
                    t = clock()
                    logits, _ = head.decode_boxes(emb, boxes)
                    if device.type == 'cuda':
                        torch.cuda.synchronize(device)
                    times[n].append(clock() - t)
                peaks[n] = max(peaks.get(n, 0), mem.cuda_peak if mem.cuda_peak is not None
                               else mem.rss_peak - base)
                if ref is None:
                    ref = logits
                # the same logits whatever the chunking (float rounding of batched matmuls)
                torch.testing.assert_close(logits, ref, atol=1e-3, rtol=1e-4)
                del logits
    loop = min(times[1])
    print(f'SAM {args.preset} geometry, {args.boxes} boxes, {device.type}, '
          f'{torch.get_num_threads()} threads, best of {args.repeats}')
    print(f'{"boxes/call":>10} {"seconds":>9} {"vs loop":>8} {"peak MB":>9}')
    for n in sizes:
        print(f'{n:>10} {min(times[n]):>9.3f} {min(times[n]) / loop:>8.2f} '
              f'{peaks[n] / 2**20:>9.1f}')


if __name__ == '__main__':
    main()
