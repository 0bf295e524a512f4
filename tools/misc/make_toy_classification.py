"""Write the toy ImageNet-format classification folder data set (12 toy-world classes), e.g.

    python tools/misc/make_toy_classification.py data/toy_classification   # ~0.5 s

Layout: OUT/train/<colour>_<shape>/*.png, OUT/val/<colour>_<shape>/*.png.
"""
import argparse

from mmsamantics_toy.toy_classification import make_toy_classification


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Generate the toy classification data set')
    p.add_argument('out_dir', nargs='?', default='data/toy_classification')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--num-train', type=int, default=16, help='train images per class')
    p.add_argument('--num-val', type=int, default=8, help='val images per class')
    p.add_argument('--img-size', type=int, default=64, help='image side (px)')
    return p.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    params = make_toy_classification(a.out_dir, seed=a.seed, num_train=a.num_train,
                                     num_val=a.num_val, img_size=a.img_size)
    n = len(params['classes'])
    print(f'{a.out_dir}: {n} classes, {n * a.num_train} train / {n * a.num_val} val images')


if __name__ == '__main__':
    main()
