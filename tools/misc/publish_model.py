"""Strip a training checkpoint to its weights for sharing, as OpenMMLab's publish_model.py.

Drops the optimizer, schedulers and message hub (what only resuming needs), keeps
``meta`` and ``state_dict``, optionally halves the floating-point weights (``--fp16``;
loading converts them back to the model's dtype), and appends the first 8 hex digits of
the file's SHA-256 to its name, so a changed file never passes for the old one. mmdet ships
the same step as a script (``.mim/tools/model_converters/publish_model.py``), not as an
importable function; it reads checkpoints with ``torch.load``'s defaults, which refuse
mmengine's message hub since torch 2.6, and cannot halve the weights. Example:

    python tools/misc/publish_model.py work_dirs/demo/epoch_12.pth insam_detr_toy.pth
    # -> insam_detr_toy-1a2b3c4d.pth
"""
import argparse
import os
import os.path as osp
from typing import List, Optional

import torch

from mmsamantics.utils.files import file_digest


def publish(in_file: str, out_file: str, fp16: bool = False, hash_name: bool = True) -> str:
    """Write the weights of ``in_file`` to ``out_file`` (+ ``-<sha256[:8]>``); returns the path.

    Raises:
        FileNotFoundError: ``in_file`` does not exist.
        ValueError: ``in_file`` holds no ``state_dict`` (not a training checkpoint).
    """
    if not osp.isfile(in_file):
        raise FileNotFoundError(f'{in_file} not found')
    ckpt = torch.load(in_file, map_location='cpu', weights_only=False)
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt:
        raise ValueError(f'{in_file} has no state_dict: is it a checkpoint written by '
                         'tools/train.py?')
    state = {k: (v.half() if fp16 and v.is_floating_point() else v)
             for k, v in ckpt['state_dict'].items()}
    meta = dict(ckpt.get('meta') or {}, published_from=osp.basename(in_file),
                dtype='float16' if fp16 else 'as trained')
    os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
    torch.save(dict(meta=meta, state_dict=state), out_file)
    if not hash_name:
        return out_file
    sha = file_digest(out_file, 'sha256')[:8]
    stem, ext = osp.splitext(out_file)
    final = f'{stem}-{sha}{ext}'
    os.replace(out_file, final)
    return final


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('in_file', help='checkpoint written by tools/train.py')
    p.add_argument('out_file')
    p.add_argument('--fp16', action='store_true', help='store float weights as float16')
    p.add_argument('--no-hash', action='store_true', help='keep out_file as given')
    args = p.parse_args(argv)
    out = publish(args.in_file, args.out_file, args.fp16, not args.no_hash)
    print(f'{out}: {osp.getsize(out) / 2**20:.1f} MiB')


if __name__ == '__main__':
    main()
