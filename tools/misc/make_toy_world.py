"""Write the synthetic toy world (COCO format, base/novel splits): see docs/insam_detr.md.

A folder holds one world: a world of the same parameters already there is reused; one made
with other parameters is kept, and the tool stops and names a folder to use instead, unless
--force. Examples:

    python tools/misc/make_toy_world.py data/toy_world --num-train 400 --num-val 100
    python tools/misc/make_toy_world.py data/toy_world_samic --num-train 120 --num-val 24
"""
import argparse
import sys
import time

from mmsamantics_toy.toy_world import ToyWorldMismatchError, is_current_toy_world, make_toy_world


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('out_dir', nargs='?', default='data/toy_world')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--num-train', type=int, default=400)
    p.add_argument('--num-val', type=int, default=100)
    p.add_argument('--force', action='store_true',
                   help='replace a world of other parameters in OUT_DIR')
    args = p.parse_args(argv)
    params = dict(seed=args.seed, num_train=args.num_train, num_val=args.num_val)
    t = time.time()
    if is_current_toy_world(args.out_dir, **params):
        print(f'{args.out_dir} already holds this toy world (seed {args.seed}, '
              f'{args.num_train} train / {args.num_val} val images): nothing written')
        return
    try:
        files = make_toy_world(args.out_dir, overwrite=args.force, **params)
    except ToyWorldMismatchError as e:
        sys.exit(f'error: {e}')
    for k, v in files.items():
        print(f'{k:>6}: {v}')
    print(f'toy world written to {args.out_dir} in {time.time() - t:.1f}s')


if __name__ == '__main__':
    main()
