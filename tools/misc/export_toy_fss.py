"""Export the toy world into the folder layouts of PASCAL-5i, COCO-20i and FSS-1000, so the
few-shot loaders (docs/samic.md, "Few-shot segmentation data") run end to end here.

    python tools/misc/make_toy_world.py data/toy_world
    python tools/misc/export_toy_fss.py data/toy_world data/toy_fss

Writes (train/ -> the training split, val/ -> the test split; images as JPEG):

    OUT/pascal5i/VOC2012/JPEGImages/{train,val}_000000.jpg ...
    OUT/pascal5i/VOC2012/SegmentationClassAug/*.png   class index = toy class + 1 (12
        classes, folds of 3), later shapes over earlier ones, 255 on a 2-px boundary band
    OUT/pascal5i/VOC2012/ImageSets/SegmentationAug/train_aug.txt, ImageSets/Segmentation/val.txt
    OUT/coco20i/annotations/instances_{train,val}2014.json + {train,val}2014/*.jpg
    OUT/fss1000/<class_folder>/<n>.jpg + <n>.png (first --per-class images of each class,
        train then val), OUT/fss1000/splits/{train,test}.txt (base / novel classes)
"""
import argparse
import copy
import json
import os
import os.path as osp
import sys
from collections import defaultdict

import cv2
import numpy as np
from PIL import Image

from mmsamantics.datasets import toy_classes, toy_splits
from mmsamantics.utils.files import read_json
from mmsamantics.utils.images import decode_coco_mask, load_image_checked

SPLITS = (('train', 'train2014', 'train_aug.txt'), ('val', 'val2014', 'val.txt'))
LAYOUTS = ('pascal5i', 'coco20i', 'fss1000')
BOUNDARY = 255


def _jpg(src: str, dst: str) -> None:
    os.makedirs(osp.dirname(dst), exist_ok=True)
    cv2.imwrite(dst, load_image_checked(src), [cv2.IMWRITE_JPEG_QUALITY, 95])


def _png(mask: np.ndarray, dst: str) -> None:
    os.makedirs(osp.dirname(dst), exist_ok=True)
    Image.fromarray(mask.astype(np.uint8), mode='L').save(dst)


def _annotations(src: str, split: str) -> dict:
    return read_json(osp.join(src, 'annotations', f'instances_{split}.json'),
                     'toy world annotation file',
                     'Make the world first: python tools/misc/make_toy_world.py SRC')


def label_map(doc: dict, img: dict) -> np.ndarray:
    """(H0, W0) uint8 class indices (toy class + 1) with a 255 band on every boundary."""
    index = {c['id']: toy_classes().index(c['name']) + 1 for c in doc['categories']}
    out = np.zeros((img['height'], img['width']), np.uint8)
    for a in doc['annotations']:
        if a['image_id'] == img['id']:
            out[decode_coco_mask(a['segmentation'], img['height'], img['width']) > 0] = \
                index[a['category_id']]
    kernel = np.ones((3, 3), np.uint8)
    band = cv2.dilate(out, kernel) != cv2.erode(out, kernel)
    out[band] = BOUNDARY
    return out


def export_pascal(src: str, out: str) -> str:
    root = osp.join(out, 'pascal5i', 'VOC2012')
    for split, _, list_name in SPLITS:
        doc, names = _annotations(src, split), []
        for img in doc['images']:
            stem = f'{split}_{osp.splitext(img["file_name"])[0]}'
            _jpg(osp.join(src, split, img['file_name']),
                 osp.join(root, 'JPEGImages', stem + '.jpg'))
            _png(label_map(doc, img), osp.join(root, 'SegmentationClassAug', stem + '.png'))
            names.append(stem)
        sets = 'SegmentationAug' if split == 'train' else 'Segmentation'
        os.makedirs(osp.join(root, 'ImageSets', sets), exist_ok=True)
        with open(osp.join(root, 'ImageSets', sets, list_name), 'w') as f:
            f.write('\n'.join(names) + '\n')
    return root


def export_coco(src: str, out: str) -> str:
    root = osp.join(out, 'coco20i')
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    for split, folder, _ in SPLITS:
        doc = copy.deepcopy(_annotations(src, split))
        for img in doc['images']:
            name = f'COCO_{folder}_{img["id"]:012d}.jpg'
            _jpg(osp.join(src, split, img['file_name']), osp.join(root, folder, name))
            img['file_name'] = name
        with open(osp.join(root, 'annotations', f'instances_{folder}.json'), 'w') as f:
            json.dump(doc, f)
    return root


def folder_name(cls: str) -> str:
    return cls.replace(' ', '_')


def export_fss(src: str, out: str, per_class: int) -> str:
    root = osp.join(out, 'fss1000')
    count = defaultdict(int)
    for split, _, _ in SPLITS:
        doc = _annotations(src, split)
        names = {c['id']: c['name'] for c in doc['categories']}
        by_img = defaultdict(lambda: defaultdict(list))
        for a in doc['annotations']:
            by_img[a['image_id']][names[a['category_id']]].append(a)
        for img in doc['images']:
            for cls, anns in sorted(by_img[img['id']].items()):
                if count[cls] >= per_class or all(a.get('iscrowd') for a in anns):
                    continue
                count[cls] += 1
                base = osp.join(root, folder_name(cls), str(count[cls]))
                mask = np.any([decode_coco_mask(a['segmentation'], img['height'],
                                                img['width']) for a in anns], 0)
                _jpg(osp.join(src, split, img['file_name']), base + '.jpg')
                _png(mask * 255, base + '.png')
    os.makedirs(osp.join(root, 'splits'), exist_ok=True)
    for name, classes in (('train', toy_splits()['base']), ('test', toy_splits()['novel'])):
        with open(osp.join(root, 'splits', f'{name}.txt'), 'w') as f:
            f.write('\n'.join(folder_name(c) for c in classes) + '\n')
    return root


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('src', nargs='?', default='data/toy_world', help='toy world folder')
    p.add_argument('out', nargs='?', default='data/toy_fss')
    p.add_argument('--layouts', nargs='+', choices=LAYOUTS, default=list(LAYOUTS))
    p.add_argument('--per-class', type=int, default=10,
                   help='FSS-1000: images per class folder (FSS-1000 has 10)')
    args = p.parse_args(argv)
    if not osp.isdir(args.src):
        sys.exit(f'error: toy world {args.src!r} not found: make it with '
                 f'python tools/misc/make_toy_world.py {args.src}')
    for layout in args.layouts:
        if layout == 'pascal5i':
            root = export_pascal(args.src, args.out)
        elif layout == 'coco20i':
            root = export_coco(args.src, args.out)
        else:
            root = export_fss(args.src, args.out, args.per_class)
        print(f'{layout:>8}: {root}')


if __name__ == '__main__':
    main()
