"""Train HQ-SAM's new parts on the frozen toy SAM, as HQ-SAM was trained on SAM.

Only the HQ output token, its MLP and the HQ feature fusion are trained (box and point
prompts on the toy world's training instance masks, class ids dropped on loading); every
SAM weight stays frozen. Writes ``--out`` in the official HQ-SAM layout (SAM's keys plus the
HQ ones), which configs/insam_detr/insam-detr_hq-sam-tiny_1xb4-12e_toy-world.py loads, and
prints the box-prompted mask IoU of SAM and HQ-SAM on the toy val instances before and
after training. Needs the toy SAM first (tools/misc/pretrain_toy_sam.py). Example:

    python tools/misc/pretrain_toy_hq_sam.py data/toy_world
"""
import argparse
import os.path as osp
from typing import List, Optional

from mmsamantics_toy.pretraining import pretrain_toy_hq_sam


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('data_root', nargs='?', default='data/toy_world')
    p.add_argument('--sam-checkpoint', default='checkpoints/sam_tiny_toy.pth',
                   help='the plain toy SAM to start from (kept frozen)')
    p.add_argument('--out', default='checkpoints/sam_hq_tiny_toy.pth')
    p.add_argument('--epochs', type=int)
    p.add_argument('--lr-drop-epoch', type=int)
    p.add_argument('--batch-size', type=int)
    p.add_argument('--lr', type=float)
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    ann = osp.join(args.data_root, 'annotations', 'instances_{}.json')
    if not osp.isfile(ann.format('train')):
        raise SystemExit(f'error: {ann.format("train")} not found; write the toy world first: '
                         'python tools/misc/make_toy_world.py')
    if not osp.isfile(args.sam_checkpoint):
        raise SystemExit(f'error: {args.sam_checkpoint} not found; HQ-SAM is trained on a '
                         'frozen SAM: make the toy SAM first with '
                         'python tools/misc/pretrain_toy_sam.py')
    given = {k: v for k, v in dict(epochs=args.epochs, lr_drop_epoch=args.lr_drop_epoch,
                                   batch_size=args.batch_size, lr=args.lr).items()
             if v is not None}
    r = pretrain_toy_hq_sam(ann.format('train'), osp.join(args.data_root, 'train'), args.out,
                            args.sam_checkpoint, seed=args.seed,
                            val=(ann.format('val'), osp.join(args.data_root, 'val')), **given)
    print(f'tiny HQ-SAM written to {args.out}: HQ loss {r["first_loss"]:.3f} -> '
          f'{r["last_loss"]:.3f} on {r["images"]} images in {r["seconds"]:.0f}s')
    print('mean mask IoU on the toy val instances (GT boxes as prompts):')
    for when in ('before', 'after'):
        v = r[f'val_{when}']
        print(f'  {when:6s} training: SAM {v["sam"]:.3f} | HQ-SAM {v["hq_sam"]:.3f} '
              f'(SAM + HQ logits, the configs\' default) | HQ token alone {v["hq_token"]:.3f}')


if __name__ == '__main__':
    main()
