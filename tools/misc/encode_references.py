"""Encode a k-shot reference set once into a reference bank (features per reference).

    python tools/misc/encode_references.py configs/insam_detr_toy.py work_dirs/x/epoch_12.pth \
        --ref-set data/toy_world/refs/refs_seed42.json --shots 5 --out work_dirs/x/bank_seed42.pth
    python tools/test.py CONFIG CKPT --ref-set REFS.json --shots 5 --ref-bank BANK.pth

The bank holds each reference's raw features (InSAM-DETR: SAM mask tokens; the training-free
matcher, e.g. configs/matcher_toy.py with no checkpoint: DINOv2 masked averages; SAMIC: the
frozen ResNet's features of the reference image, its heatmap still made at test time; SAM 3,
whose exemplars are re-encoded with every target: each reference's exemplar crop as uint8
pixels and its box in the crop); the detector combines the k shots of a class, so one bank
of k references serves every k' <= k, and a run with it reads no reference image:

    python tools/misc/encode_references.py configs/samic_toy.py work_dirs/samic_toy/epoch_30.pth \
        --ref-set REFS.json --shots 5 --out work_dirs/samic_toy/bank.pth
    python tools/misc/encode_references.py configs/sam3_coco.py \
        --ref-set data/coco/references/refs_seed42.json --out work_dirs/sam3_coco/bank_seed42.pth

A bank is refused by a model whose signature differs (other weights, preprocessing, or
another kind of model), with the command that rebuilds it.
"""
import argparse
import sys
import time

from mmengine.config import DictAction

import mmsamantics  # noqa: F401
from mmsamantics.apis import build_model, make_reference_bank
from mmsamantics.utils import MissingResourceError
from mmsamantics.utils.config_paths import load_config


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config')
    p.add_argument('checkpoint', nargs='?', default=None,
                   help='trained checkpoint (its SAM weights; default: the config\'s SAM)')
    p.add_argument('--ref-set', required=True, help='tools/misc/make_reference_sets.py output')
    p.add_argument('--shots', type=int, default=10, help='references per class to encode')
    p.add_argument('--out', required=True, help='bank file (.pth)')
    p.add_argument('--split', default='test', choices=['val', 'test'])
    p.add_argument('--batch-size', type=int, default=4, help='reference images per pass')
    p.add_argument('--device', default='cpu')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args()
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    t = time.time()
    try:
        model = build_model(cfg, args.checkpoint, args.device)
        meta = make_reference_bank(model, cfg, args.ref_set, args.shots, args.out,
                                   split=args.split, batch_size=args.batch_size)
    except (MissingResourceError, FileNotFoundError, ValueError) as e:
        sys.exit(f'error: {e}')
    print(f'{len(meta["classes"])} classes x up to {args.shots} references encoded in '
          f'{time.time() - t:.1f}s -> {args.out}')


if __name__ == '__main__':
    main()
