"""Write the synthetic toy world (COCO format, base/novel splits): see SPEC §7.

Example:
    python tools/misc/make_toy_world.py data/toy_world --num-train 400 --num-val 100
"""
import argparse
import time

from mmsamantics.datasets.toy_world import make_toy_world


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('out_dir', nargs='?', default='data/toy_world')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--num-train', type=int, default=400)
    p.add_argument('--num-val', type=int, default=100)
    args = p.parse_args()
    t = time.time()
    files = make_toy_world(args.out_dir, seed=args.seed, num_train=args.num_train,
                           num_val=args.num_val)
    for k, v in files.items():
        print(f'{k:>6}: {v}')
    print(f'toy world written to {args.out_dir} in {time.time() - t:.1f}s')


if __name__ == '__main__':
    main()
