"""Pretrain the tiny SAM on the toy world (class-agnostic box-prompted segmentation).

The result, checkpoints/sam_tiny_toy.pth by default, is what configs/insam_detr_toy.py loads
as its "SAM weights", in the layout of the official SAM checkpoints. Example:

    python tools/misc/pretrain_toy_sam.py data/toy_world --epochs 8
"""
import argparse
import os.path as osp

from mmsamantics.models.sam.toy_pretrain import pretrain_toy_sam


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('data_root', nargs='?', default='data/toy_world')
    p.add_argument('--out', default='checkpoints/sam_tiny_toy.pth')
    p.add_argument('--epochs', type=int)
    p.add_argument('--batch-size', type=int)
    p.add_argument('--lr', type=float)
    p.add_argument('--seed', type=int)
    args = p.parse_args()
    ann = osp.join(args.data_root, 'annotations', 'instances_train.json')
    if not osp.isfile(ann):
        raise SystemExit(f'error: {ann} not found; write the toy world first: '
                         'python tools/misc/make_toy_world.py')
    given = {k: v for k, v in dict(epochs=args.epochs, batch_size=args.batch_size,
                                   lr=args.lr, seed=args.seed).items() if v is not None}
    r = pretrain_toy_sam(ann, osp.join(args.data_root, 'train'), args.out, **given)
    print(f'tiny SAM written to {args.out}: mean mask IoU {r["mean_iou"]:.3f} on '
          f'{r["images"]} images in {r["seconds"]:.0f}s')


if __name__ == '__main__':
    main()
