"""Make the toy SAM the way SAM was made: MAE on the image encoder, then promptable segmentation.

Stage 1 (MAE, images only) writes ``<out stem>_mae.pth``; stage 2 (box and point prompts on
the toy world's instance masks, class ids dropped on loading) starts from it and writes
``--out`` in the official SAM layout, which configs/insam_detr_toy.py loads. No class label
is used by either stage. Example:

    python tools/misc/pretrain_toy_sam.py data/toy_world
"""
import argparse
import os.path as osp

from mmsamantics_toy.pretraining import pretrain_sam_encoder_mae, pretrain_toy_sam


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('data_root', nargs='?', default='data/toy_world')
    p.add_argument('--out', default='checkpoints/sam_tiny_toy.pth')
    p.add_argument('--mae-epochs', type=int, default=40,
                   help='MAE epochs on the training images; 0 = start from random weights')
    p.add_argument('--epochs', type=int, help='promptable-segmentation epochs')
    p.add_argument('--batch-size', type=int)
    p.add_argument('--lr', type=float)
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args()
    ann = osp.join(args.data_root, 'annotations', 'instances_train.json')
    img_dir = osp.join(args.data_root, 'train')
    if not osp.isfile(ann):
        raise SystemExit(f'error: {ann} not found; write the toy world first: '
                         'python tools/misc/make_toy_world.py')
    init = None
    if args.mae_epochs > 0:
        init = osp.splitext(args.out)[0] + '_mae.pth'
        r = pretrain_sam_encoder_mae(img_dir, init, epochs=args.mae_epochs, seed=args.seed)
        print(f'MAE stage written to {init}: loss {r["first_loss"]:.3f} -> {r["last_loss"]:.3f} '
              f'on {r["images"]} images in {r["seconds"]:.0f}s')
    given = {k: v for k, v in dict(epochs=args.epochs, batch_size=args.batch_size,
                                   lr=args.lr).items() if v is not None}
    r = pretrain_toy_sam(ann, img_dir, args.out, seed=args.seed, init_encoder=init, **given)
    print(f'tiny SAM written to {args.out}: mean mask IoU {r["mean_iou"]:.3f} on '
          f'{r["images"]} images in {r["seconds"]:.0f}s')


if __name__ == '__main__':
    main()
