"""Precompute the frozen SAM's target features and reference tokens of a dataset.

    python tools/misc/cache_embeddings.py configs/insam_detr_toy.py --out data/cache/toy_train
    # 8 processes (or GPUs) in parallel, each its own shard; re-running resumes:
    torchrun --nproc_per_node 8 tools/misc/cache_embeddings.py CONFIG --out DIR --device cuda

Then train from the cache (configs/insam_detr/*_cached.py, or ``--cfg-options`` with the
cached pipeline; README "Frozen-embedding cache").
"""
import argparse
import os
import sys
import time

from mmengine.config import DictAction

import mmsamantics  # noqa: F401
from mmsamantics.apis import build_dataset, build_feature_cache, build_model, cache_items
from mmsamantics.datasets import FeatureCache
from mmsamantics.engine import set_local_device
from mmsamantics.utils import MissingResourceError
from mmsamantics.utils.config_paths import load_config


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config')
    p.add_argument('checkpoint', nargs='?', default=None,
                   help='trained checkpoint (default: the SAM weights of the config)')
    p.add_argument('--out', required=True, help='cache directory')
    p.add_argument('--split', default='train', choices=['train', 'val', 'test'])
    p.add_argument('--batch-size', type=int, default=4)
    p.add_argument('--dtype', default='float16', choices=['float16', 'float32'])
    p.add_argument('--with-embedding', action='store_true',
                   help='also store the SAM embedding (needed to predict masks from the cache)')
    p.add_argument('--no-references', action='store_true', help='target features only')
    p.add_argument('--num-shards', type=int, default=int(os.environ.get('WORLD_SIZE', 1)))
    p.add_argument('--shard-id', type=int, default=int(os.environ.get('RANK', 0)))
    p.add_argument('--device', default='cpu',
                   help="'cpu' or 'cuda' (under torchrun each process uses cuda:LOCAL_RANK)")
    p.add_argument('--overwrite', action='store_true', help='restart a cache made differently')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if not 0 <= args.shard_id < args.num_shards:
        sys.exit(f'error: --shard-id {args.shard_id} not in [0, {args.num_shards})')
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    device = args.device
    if device == 'cuda':
        try:  # every torchrun process on its own GPU (cuda:LOCAL_RANK), not all on GPU 0
            local = set_local_device()
        except RuntimeError as e:
            sys.exit(f'error: {e}')
        if local is None:
            sys.exit('error: --device cuda but torch sees no GPU (python -c "import torch; '
                     'print(torch.cuda.is_available())"): see docs/gpu.md')
        device = str(local)
    try:
        model = build_model(cfg, args.checkpoint, device)
        dataset = build_dataset(cfg, args.split)
    except (MissingResourceError, FileNotFoundError) as e:
        sys.exit(f'error: {e}')
    items = cache_items(dataset, with_references=not args.no_references)
    cache = FeatureCache(args.out)
    t = time.time()

    def progress(done: int, total: int) -> None:
        if done == total or done % (50 * args.batch_size) < args.batch_size:
            print(f'[shard {args.shard_id}/{args.num_shards}] {done}/{total} images '
                  f'({time.time() - t:.0f}s)', flush=True)

    stats = build_feature_cache(model, items, cache, shard_id=args.shard_id,
                                num_shards=args.num_shards, batch_size=args.batch_size,
                                dtype=args.dtype, with_embedding=args.with_embedding,
                                progress=progress)
    m = cache.meta
    per_img = sum(m['channels']) * (m['img_size'] // m['stride']) ** 2 * (
        2 if m['dtype'] == 'float16' else 4)
    print(f'shard {args.shard_id}/{args.num_shards}: {stats["computed"]} images computed, '
          f'{stats["skipped"]} already cached, {stats["seconds"]}s. Features: '
          f'{per_img / 2**20:.2f} MiB per image, {per_img * len(items) / 2**30:.2f} GiB for '
          f'the {len(items)} images of this dataset. Cache: {args.out}')


if __name__ == '__main__':
    main()
