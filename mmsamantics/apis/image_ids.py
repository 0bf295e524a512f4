"""Image ids for results: 1..N, or those of a COCO file, matched by relative path and size.

Results are scored against a GT file by ``image_id``, so an id given to the wrong image
gives silently wrong scores. Images are named by their path relative to ``--img-dir`` (or
to the folder all ``--images`` share) and matched to the GT's ``file_name`` s:

1. the same relative path; else
2. one path ending with the other, whole folder names only (``val/000001.png`` and
   ``000001.png``);
3. among several candidates, those of the same size (GT ``height`` / ``width`` against
   the file's header, either orientation).

An image with several candidates left, two images matching one GT image, or an image
that matches by path but not by size is an error naming them. Images the GT does not
list get ids after its largest and are listed.
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

from ..utils.files import read_json

Size = Optional[Tuple[int, int]]  # (H, W), None when unknown


def image_names(images: Sequence, img_dir: Optional[str] = None) -> List[str]:
    """Names of the inputs: paths relative to ``img_dir``, else to the deepest folder the
    path inputs share (POSIX separators); ``<array i>`` for arrays."""
    paths = [osp.abspath(p) for p in images if isinstance(p, str)]
    if img_dir is not None:
        root = osp.abspath(img_dir)
    elif paths:
        root = osp.commonpath([osp.dirname(p) for p in paths])
    else:
        root = ''
    return [osp.relpath(osp.abspath(p), root).replace(os.sep, '/') if isinstance(p, str)
            else f'<array {i}>' for i, p in enumerate(images)]


def _parts(name: str) -> Tuple[str, ...]:
    return tuple(p for p in name.replace('\\', '/').split('/') if p not in ('', '.'))


def _suffix(a: Tuple[str, ...], b: Tuple[str, ...]) -> bool:
    """One of ``a``, ``b`` ends with the other (whole components)."""
    n = min(len(a), len(b))
    return n > 0 and a[-n:] == b[-n:]


def read_ids_file(path: str) -> List[dict]:
    """The ``images`` of a COCO file, checked: integer ids, string file names."""
    doc = read_json(path, '--image-ids-from file', 'Give the COCO annotation file of the '
                    'images (e.g. data/coco/annotations/instances_val2017.json).')
    images = doc.get('images') if isinstance(doc, dict) else None
    if not isinstance(images, list):
        raise ValueError(f'--image-ids-from {path!r} is not a COCO file (no "images" list)')
    for im in images:
        if not isinstance(im, dict) or isinstance(im.get('id'), bool) or \
                not isinstance(im.get('id'), int) or not isinstance(im.get('file_name'), str):
            raise ValueError(f'--image-ids-from {path!r}: every image needs an integer "id" '
                             f'and a "file_name"; got {im!r}')
    return images


def _candidates(name: str, size: Size, by_parts: Dict[Tuple[str, ...], List[dict]],
                path: str) -> Optional[dict]:
    """The one GT image of ``name`` (module docstring), None when there is none."""
    parts = _parts(name)
    cands = by_parts.get(parts) or [im for k, ims in by_parts.items() if _suffix(k, parts)
                                    for im in ims]
    if not cands:
        return None
    if size is not None and any('height' in im for im in cands):
        fits = [im for im in cands if (im.get('height'), im.get('width')) in (size, size[::-1])]
        if not fits:
            got = ', '.join(f'{im["file_name"]} ({im.get("width")}x{im.get("height")})'
                            for im in cands[:3])
            raise ValueError(f'{name} ({size[1]}x{size[0]}) matches {got} of {path} by path '
                             'but not by size: not the same image. Give --img-dir the folder '
                             'the file names are relative to, or drop --image-ids-from.')
        cands = fits
    if len(cands) > 1:
        raise ValueError(f'{name} matches several images of {path}: '
                         f'{[im["file_name"] for im in cands[:5]]}; give --img-dir the folder '
                         'the file names are relative to')
    return cands[0]


def match_image_ids(names: Sequence[str], sizes: Sequence[Size], ids_file: Optional[str]
                    ) -> Tuple[List[int], List[str]]:
    """Image ids of ``names`` (see the module docstring).

    Args:
        names: from :func:`image_names`. sizes: (H, W) of each image, or None.
        ids_file: a COCO file, or None for ids 1..N.

    Returns:
        (ids, names of the images not in ``ids_file``, which got new ids).

    Raises:
        ValueError: an ambiguous match, a size mismatch, or two images matching one GT
            image; MissingResourceError: no such file.
    """
    if ids_file is None:
        return list(range(1, len(names) + 1)), []
    images = read_ids_file(ids_file)
    by_parts: Dict[Tuple[str, ...], List[dict]] = {}
    for im in images:
        by_parts.setdefault(_parts(im['file_name']), []).append(im)
    ids, unknown, taken = [], [], {}
    nxt = max((im['id'] for im in images), default=0) + 1
    for name, size in zip(names, sizes):
        im = _candidates(name, size, by_parts, ids_file)
        if im is None:
            unknown.append(name)
            ids.append(nxt)
            nxt += 1
            continue
        if im['id'] in taken:
            raise ValueError(f'{taken[im["id"]]} and {name} both match {im["file_name"]} (id '
                             f'{im["id"]}) of {ids_file}: their scores would be mixed. Give '
                             '--img-dir the folder the file names are relative to, or infer '
                             'on one folder at a time.')
        taken[im['id']] = name
        ids.append(im['id'])
    return ids, unknown
