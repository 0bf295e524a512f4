"""Write a COCO-shaped annotation file for scale tests (evaluation and data-loading benchmarks).

COCO's 80 categories (its ids and mmdet's ``CocoDataset`` names), and COCO-like statistics
(COCO 2017: 7.3 instances and 2.9 categories per image, 1 % of images empty, person 30 % of
the instances, 41 % / 34 % / 25 % small / medium / large, about 1 % crowd regions): polygon
outlines (objects that cross the frame are clipped to it, so their polygons touch it), crowd
regions as uncompressed RLE like COCO's own files, and for the first ``--pixels`` images a
JPEG with every object filled in its class colour. Deterministic given ``--seed``.

    # a train2017-sized file (118k images, about 860k instances), no pixels
    python tools/misc/make_synthetic_coco.py data/synthetic_coco/train.json --images 118287
    # a val-sized file whose first 64 images exist on disk
    python tools/misc/make_synthetic_coco.py data/synthetic_coco/val.json --images 5000 \\
        --pixels 64 --img-dir data/synthetic_coco/val

:func:`detections` makes the detections an in-context detector returns in oracle mode (up
to ``per_pair`` per (image, present class), box-shaped RLE masks) for the evaluation
benchmark and tests, without pixels.
"""
import argparse
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Tuple

import numpy as np
import pycocotools.mask as mask_utils

from mmsamantics.datasets.class_splits import coco_classes
from mmsamantics.utils.files import write_json_atomic
from mmsamantics.utils.rle import uncompressed_rle

# COCO 2017's category ids: 1..90 without the ten ids the dataset never used
COCO_IDS = [i for i in range(1, 91) if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)]
# common COCO image sizes (width, height) and how often they come up
IMAGE_SIZES = ((640, 480), (640, 427), (480, 640), (640, 424), (500, 375), (640, 360),
               (427, 640), (612, 612))
SIZE_WEIGHTS = (0.35, 0.2, 0.15, 0.1, 0.08, 0.05, 0.05, 0.02)
# sqrt(area) ranges of COCO's small / medium / large objects and their shares
SIDE_RANGES = ((4.0, 32.0), (32.0, 96.0), (96.0, 480.0))
SIDE_SHARES = (0.41, 0.34, 0.25)
EMPTY_SHARE, CROWD_SHARE = 0.01, 0.01
MEAN_INSTANCES, MEAN_CLASSES = 7.3, 2.9  # per non-empty image


def categories() -> List[dict]:
    """COCO's 80 categories: ids and names (names from mmdet's ``CocoDataset``)."""
    return [dict(id=i, name=n, supercategory='object')
            for i, n in zip(COCO_IDS, coco_classes())]


def class_weights() -> np.ndarray:
    """How often each class is drawn: person 30 % of the instances, the rest long-tailed."""
    rest = 1.0 / np.arange(1, len(COCO_IDS)) ** 0.9
    rest = rest[np.random.default_rng(0).permutation(len(rest))]
    return np.concatenate([[0.2], 0.8 * rest / rest.sum()])


def outline(rng: np.random.Generator, box: np.ndarray, w: int, h: int) -> np.ndarray:
    """(V, 2) polygon: a jittered ellipse in ``box`` (x0, y0, x1, y1), clipped to the frame."""
    n = int(rng.integers(8, 25))
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = rng.uniform(0.75, 1.0, n)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    pts = np.stack([cx + (box[2] - box[0]) / 2 * r * np.cos(t),
                    cy + (box[3] - box[1]) / 2 * r * np.sin(t)], 1)
    return np.round(np.clip(pts, 0, [w, h]), 2)


def polygon_area(pts: np.ndarray) -> float:
    """Shoelace area of a (V, 2) polygon."""
    x, y = pts[:, 0], pts[:, 1]
    return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2)


def sample_boxes(rng: np.random.Generator, n: int, w: int, h: int) -> np.ndarray:
    """(n, 4) x0, y0, x1, y1 boxes with COCO's size mix; centres anywhere in the frame, so
    large objects often cross it."""
    kind = rng.choice(3, n, p=SIDE_SHARES)
    lo, hi = np.array(SIDE_RANGES)[kind].T
    hi = np.minimum(hi, np.sqrt(w * h))
    # the outline (a jittered ellipse) fills about 60 % of its box: boxes 1.3x the side
    side = 1.3 * np.exp(rng.uniform(np.log(lo), np.log(hi)))
    aspect = np.exp(rng.normal(0, 0.5, n))
    bw = np.maximum(side * np.sqrt(aspect), 2.0)
    bh = np.maximum(side / np.sqrt(aspect), 2.0)
    c = rng.uniform([0, 0], [w, h], (n, 2))
    # keep at least 2 px inside the frame in each direction
    c = np.clip(c, np.stack([2 - bw / 2, 2 - bh / 2], 1), np.stack([w - 2 + bw / 2,
                                                                    h - 2 + bh / 2], 1))
    return np.stack([c[:, 0] - bw / 2, c[:, 1] - bh / 2, c[:, 0] + bw / 2, c[:, 1] + bh / 2], 1)


def image_annotations(rng: np.random.Generator, img: dict, weights: np.ndarray,
                      next_id: int) -> List[dict]:
    """The annotations of one image (possibly none)."""
    if rng.random() < EMPTY_SHARE:
        return []
    n = min(1 + int(rng.negative_binomial(1.0, 1.0 / MEAN_INSTANCES)), 93)
    # the Poisson mean makes up for the images with fewer instances than classes drawn
    k = min(n, 1 + int(rng.poisson(MEAN_CLASSES - 0.3)))
    cls = rng.choice(len(COCO_IDS), k, replace=False, p=weights)
    labels = np.concatenate([cls, rng.choice(cls, n - k, p=weights[cls] / weights[cls].sum())])
    w, h = img['width'], img['height']
    anns = []
    for j, (label, box) in enumerate(zip(labels, sample_boxes(rng, n, w, h))):
        pts = outline(rng, box, w, h)
        x0, y0 = pts.min(0)
        x1, y1 = pts.max(0)
        ann = dict(id=next_id + j, image_id=img['id'], category_id=COCO_IDS[label],
                   bbox=[float(x0), float(y0), round(float(x1 - x0), 2),
                         round(float(y1 - y0), 2)],
                   iscrowd=0, segmentation=[pts.ravel().tolist()], area=polygon_area(pts))
        if rng.random() < CROWD_SHARE:  # COCO's crowd regions: uncompressed RLE
            m = mask_utils.decode(mask_utils.frPyObjects(ann['segmentation'], h, w))[..., 0]
            ann.update(iscrowd=1, segmentation=uncompressed_rle(m), area=float(m.sum()))
        anns.append(ann)
    return anns


def make_synthetic_coco(num_images: int, seed: int = 0) -> dict:
    """A COCO annotation document of ``num_images`` images (module docstring)."""
    rng = np.random.default_rng(seed)
    sizes = rng.choice(len(IMAGE_SIZES), num_images, p=SIZE_WEIGHTS)
    weights = class_weights()
    images, anns = [], []
    for i, s in enumerate(sizes):
        w, h = IMAGE_SIZES[s]
        img = dict(id=i + 1, file_name=f'{i + 1:012d}.jpg', width=w, height=h)
        images.append(img)
        anns += image_annotations(rng, img, weights, len(anns) + 1)
    return dict(info=dict(description=f'synthetic COCO-shaped file, seed {seed}'),
                images=images, annotations=anns, categories=categories())


def draw_images(doc: dict, img_dir: str, count: int, seed: int = 0) -> int:
    """JPEGs of the first ``count`` images: noise, every instance filled in its class colour
    (crowd regions too). Returns how many were written."""
    import cv2
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, (91, 3))
    by_image: Dict[int, List[dict]] = {}
    for a in doc['annotations']:
        by_image.setdefault(a['image_id'], []).append(a)
    os.makedirs(img_dir, exist_ok=True)
    for img in doc['images'][:count]:
        h, w = img['height'], img['width']
        pix = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for a in by_image.get(img['id'], []):
            if a['iscrowd']:
                m = mask_utils.decode(mask_utils.frPyObjects(a['segmentation'], h, w)) > 0
                pix[m] = colours[a['category_id']]
            else:
                pts = np.round(np.array(a['segmentation'][0]).reshape(-1, 2)).astype(np.int32)
                cv2.fillPoly(pix, [pts], colours[a['category_id']].tolist())
        cv2.imwrite(osp.join(img_dir, img['file_name']), pix)
    return min(count, len(doc['images']))


def detections(doc: dict, per_pair: int = 100, seed: int = 0) -> List[dict]:
    """Oracle-mode detections of ``doc``'s images, as mmdet's ``CocoMetric.process`` keeps
    them: ``per_pair`` per (image, class present): three jittered copies of each of the
    class's instances (scored higher the closer they are), the rest random boxes with lower
    scores; box-shaped RLE masks. ``labels`` index the categories in id order.

    Returns:
        One dict per image: ``img_id``, ``bboxes`` (N, 4) x0 y0 x1 y1, ``scores`` (N,),
        ``labels`` (N,), ``masks`` (N RLEs, ``bytes`` counts).
    """
    rng = np.random.default_rng(seed)
    label_of = {c: i for i, c in enumerate(COCO_IDS)}
    by_image: Dict[int, Dict[int, List[list]]] = {}
    for a in doc['annotations']:
        pairs = by_image.setdefault(a['image_id'], {})
        pairs.setdefault(a['category_id'], []).append(a['bbox'] if not a['iscrowd'] else None)
    out = []
    for img in doc['images']:
        parts = [_pair_detections(rng, [b for b in gts if b is not None], per_pair, img)
                 + (label_of[cat],)
                 for cat, gts in sorted(by_image.get(img['id'], {}).items())]
        boxes = np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, 4))
        scores = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
        labels = np.concatenate([np.full(len(p[0]), p[2]) for p in parts]) if parts \
            else np.zeros(0)
        boxes = boxes.astype(np.float32).astype(np.float64)  # the mask of the box reported
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
        masks = mask_utils.frPyObjects(xywh, img['height'], img['width']) if len(xywh) else []
        out.append(dict(img_id=img['id'], bboxes=boxes.astype(np.float32),
                        scores=scores.astype(np.float32), labels=labels.astype(np.int64),
                        masks=list(masks)))
    return out


def _pair_detections(rng: np.random.Generator, gts: List[list], n: int,
                     img: dict) -> Tuple[np.ndarray, np.ndarray]:
    """(boxes (n, 4) x0 y0 x1 y1, scores (n,)) of one (image, class) pair."""
    w, h = img['width'], img['height']
    g = np.array(gts, np.float64).reshape(-1, 4)
    g = np.repeat(g, 3, 0)[:n]
    noise = rng.uniform(0.0, 0.4, len(g))
    centre = g[:, :2] + g[:, 2:] / 2 + rng.normal(0, 1, (len(g), 2)) * g[:, 2:] * noise[:, None]
    size = g[:, 2:] * np.exp(rng.normal(0, 1, (len(g), 2)) * noise[:, None])
    near = np.concatenate([centre - size / 2, centre + size / 2], 1)
    far = sample_boxes(rng, n - len(g), w, h)
    boxes = np.clip(np.concatenate([near, far]), 0, [w - 1, h - 1, w, h])
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)  # at least 1 px, in the frame
    scores = np.concatenate([rng.uniform(0.2, 1.0, len(g)) * (1 - noise),
                             rng.uniform(0.0, 0.5, n - len(g))])
    return boxes, scores


def main(argv: Optional[List[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('out', help='the annotation file to write (JSON)')
    p.add_argument('--images', type=int, default=1000, help='number of images')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--pixels', type=int, default=0,
                   help='write JPEGs of the first PIXELS images into --img-dir')
    p.add_argument('--img-dir', default=None, help='image folder (with --pixels)')
    args = p.parse_args(argv)
    if args.images < 1:
        p.error(f'--images must be at least 1, got {args.images}')
    if args.pixels and not args.img_dir:
        p.error('--pixels needs --img-dir, the folder to write the images into')
    t = time.time()
    doc = make_synthetic_coco(args.images, args.seed)
    write_json_atomic(args.out, doc)
    print(f'{args.out}: {len(doc["images"])} images, {len(doc["annotations"])} annotations '
          f'({time.time() - t:.1f}s)')
    if args.pixels:
        n = draw_images(doc, args.img_dir, args.pixels, args.seed)
        print(f'{n} images written to {args.img_dir}')


if __name__ == '__main__':
    main()
