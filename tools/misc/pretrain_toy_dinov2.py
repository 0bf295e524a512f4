"""Make the toy DINOv2 the way DINOv2 was made: self-distillation on unlabelled images.

The DINOv2 objective: DINO's multi-crop image-level loss, iBOT's masked-patch loss and the
KoLeo regulariser, with the teacher temperature warmed up from 0.04 to 0.07.

Writes the teacher ViT in timm's DINOv2 layout (default checkpoints/dinov2_tiny_toy.pth),
which ``DINOv2Encoder(preset='tiny', checkpoint=...)`` loads strictly (the matcher's toy
config and the toy linear probe). Only the image files of the folder are read. Example:

    python tools/misc/pretrain_toy_dinov2.py data/toy_world/train
"""
import argparse

from mmsamantics_toy.pretraining import pretrain_toy_dinov2


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('img_dir', nargs='?', default='data/toy_world/train')
    p.add_argument('--out', default='checkpoints/dinov2_tiny_toy.pth')
    p.add_argument('--epochs', type=int, default=30)
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--ibot-weight', type=float, default=1.0, help='0: DINO loss only')
    p.add_argument('--koleo-weight', type=float, default=0.1, help='0: no KoLeo term')
    args = p.parse_args()
    r = pretrain_toy_dinov2(args.img_dir, args.out, epochs=args.epochs,
                            batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                            ibot_weight=args.ibot_weight, koleo_weight=args.koleo_weight)
    print(f'tiny DINOv2 written to {args.out}: loss {r["first_loss"]:.3f} -> '
          f'{r["last_loss"]:.3f} on {r["images"]} images in {r["seconds"]:.0f}s')


if __name__ == '__main__':
    main()
