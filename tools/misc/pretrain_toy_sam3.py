"""Make the toy SAM 3 the way SAM 3 was made: a contrastive Perception Encoder, then SAM's task.

Stage 1 (CLIP's contrastive loss between the vision backbone and a text encoder, on captions
written from each image's category counts: image-level labels, no boxes or masks as targets)
writes the stage-1 file (``--pe``, default ``<out stem>_pe.pth``); stage 2 (box and point
prompts on the toy world's instance masks, class ids dropped on loading) trains SAM 3's SAM
1-task mask path (prompt encoder, mask decoder, and the second neck at ``--neck-lr-mult`` of
the learning rate), fine-tunes the Perception Encoder at ``--trunk-lr-mult`` of it (the
stand-in for SAM 3's detector stages; 0, the default, = frozen), then writes ``--out`` in the
released ``sam3.pt`` layout (the exemplar encoder holds seeded random weights: SAM 3 trains
it on noun-phrase detection, not reproduced here). About 6 min for stage 1 and 6 min for
stage 2 on one CPU thread.
Example:

    python tools/misc/pretrain_toy_sam3.py data/toy_world
"""
import argparse
import os.path as osp
from typing import List, Optional

from mmsamantics_toy.pretraining.contrastive_pe import pretrain_toy_sam3_pe
from mmsamantics_toy.pretraining.promptable_sam3 import (NECK_LR_MULT, box_prompt_iou,
                                                         pretrain_toy_sam3)


def _stage_1(ann: str, img_dir: str, pe: str, args: argparse.Namespace) -> None:
    r = pretrain_toy_sam3_pe(ann, img_dir, pe, epochs=args.pe_epochs, seed=args.seed)
    print(f'stage 1 (contrastive PE) written to {pe}: loss {r["first_loss"]:.3f} -> '
          f'{r["last_loss"]:.3f}, in-batch retrieval {r["first_acc"]:.3f} -> '
          f'{r["last_acc"]:.3f} on {r["images"]} images in {r["seconds"]:.0f}s '
          f'(tokenizer vocabulary {r["bpe_path"]})')


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('data_root', nargs='?', default='data/toy_world')
    p.add_argument('--out', default='checkpoints/sam3_toy.pth')
    p.add_argument('--pe-epochs', type=int, default=30,
                   help='contrastive (Perception Encoder) epochs on the captioned images; '
                   '0 = reuse the stage-1 file (--pe) written before')
    p.add_argument('--pe', help='the stage-1 file: written by stage 1, read by stage 2 '
                   '(default: <out stem>_pe.pth)')
    p.add_argument('--epochs', type=int, default=20, help='promptable-segmentation epochs')
    p.add_argument('--trunk-lr-mult', type=float, default=0.0,
                   help='stage 2 fine-tunes the Perception Encoder at this fraction of the '
                   'learning rate, class-agnostically (0 = frozen as stage 1 left it)')
    p.add_argument('--neck-lr-mult', type=float, default=NECK_LR_MULT,
                   help="stage 2 trains SAM 3's second (SAM 2) neck, started from the stage-1 "
                   'neck, at this fraction of the learning rate (0 = kept at that copy)')
    p.add_argument('--lr', type=float, default=2e-3,
                   help="stage 2's peak learning rate (one-cycle schedule)")
    p.add_argument('--grad-clip', type=float, default=0.1,
                   help="stage 2's maximal gradient norm (SAM 2's 0.1; 0 = no clipping)")
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args(argv)
    ann = osp.join(args.data_root, 'annotations', 'instances_train.json')
    img_dir = osp.join(args.data_root, 'train')
    if not osp.isfile(ann):
        raise SystemExit(f'error: {ann} not found; write the toy world first: '
                         'python tools/misc/make_toy_world.py')
    pe = args.pe or osp.splitext(args.out)[0] + '_pe.pth'
    if args.pe_epochs == 0:
        if not osp.isfile(pe):
            raise SystemExit(f'error: --pe-epochs 0 reuses {pe}, which does not exist: '
                             'run stage 1 first (--pe-epochs > 0), or name it with --pe')
    else:
        _stage_1(ann, img_dir, pe, args)
    r = pretrain_toy_sam3(ann, img_dir, pe, args.out, epochs=args.epochs, seed=args.seed,
                          lr=args.lr, trunk_lr_mult=args.trunk_lr_mult,
                          neck_lr_mult=args.neck_lr_mult,
                          grad_clip=args.grad_clip)
    print(f'toy SAM 3 written to {args.out}: mean mask IoU {r["first_iou"]:.3f} -> '
          f'{r["mean_iou"]:.3f} on {r["images"]} images in {r["seconds"]:.0f}s')
    val = osp.join(args.data_root, 'annotations', 'instances_val.json')
    if osp.isfile(val):
        iou = box_prompt_iou(args.out, val, osp.join(args.data_root, 'val'))
        print(f'box-prompted mask IoU on the val instances: {iou:.3f}')


if __name__ == '__main__':
    main()
