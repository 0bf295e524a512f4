"""The COCO-shaped synthetic file of tools/misc/make_synthetic_coco.py: COCO's categories,
COCO-like statistics, crowd RLE, polygons on the frame, pixels, oracle detections."""
import json
from collections import Counter

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import pytest

from helpers import load_tool
from mmdet.datasets import CocoDataset
from mmsamantics.utils.rle import decode_coco_mask


@pytest.fixture(scope='module')
def tool():
    return load_tool('tools/misc/make_synthetic_coco.py')


@pytest.fixture(scope='module')
def doc(tool):
    return tool.make_synthetic_coco(400, seed=1)


def test_cocos_categories_ids_and_names(doc):
    cats = doc['categories']
    assert [c['name'] for c in cats] == list(CocoDataset.METAINFO['classes'])
    ids = [c['id'] for c in cats]
    assert len(ids) == 80 and ids[:12] == list(range(1, 12)) + [13] and ids[-1] == 90
    assert not {12, 26, 29, 30, 45, 66, 68, 69, 71, 83} & set(ids)


def test_coco_like_statistics(doc):
    """COCO 2017: 7.3 instances and 2.9 classes per image, person 30 %, 41/34/25 % small /
    medium / large, 1 % crowd (the file holds 400 images: a few per cent of sampling noise)."""
    anns, n = doc['annotations'], len(doc['images'])
    per_image = Counter(a['image_id'] for a in anns)
    classes = {}
    for a in anns:
        classes.setdefault(a['image_id'], set()).add(a['category_id'])
    area = np.array([a['area'] for a in anns])
    assert 6.5 < len(anns) / len(per_image) < 8.1 and n - len(per_image) < 0.03 * n
    assert 2.5 < np.mean([len(c) for c in classes.values()]) < 3.3
    assert 0.24 < Counter(a['category_id'] for a in anns)[1] / len(anns) < 0.36
    shares = [(area < 32 ** 2).mean(), (area > 96 ** 2).mean()]
    assert 0.36 < shares[0] < 0.50 and 0.18 < shares[1] < 0.30
    assert 0.004 < np.mean([a['iscrowd'] for a in anns]) < 0.02
    assert len({a['id'] for a in anns}) == len(anns)


def test_crowd_rle_and_polygons_touching_the_frame(doc):
    imgs = {im['id']: im for im in doc['images']}
    crowd = [a for a in doc['annotations'] if a['iscrowd']]
    for a in crowd:
        im = imgs[a['image_id']]
        seg = a['segmentation']
        assert isinstance(seg['counts'], list) and seg['size'] == [im['height'], im['width']]
        assert decode_coco_mask(seg, im['height'], im['width']).sum() == a['area'] > 0
    touching = 0
    for a in doc['annotations']:
        if a['iscrowd']:
            continue
        im = imgs[a['image_id']]
        pts = np.array(a['segmentation'][0]).reshape(-1, 2)
        assert (pts >= 0).all() and (pts <= [im['width'], im['height']]).all()
        x, y, w, h = a['bbox']
        assert w >= 1 and h >= 1 and np.allclose([x, y, x + w, y + h],
                                                 [*pts.min(0), *pts.max(0)], atol=0.011)
        touching += bool((pts == 0).any() or (pts == [im['width'], im['height']]).any())
    assert touching > 0.1 * len(doc['annotations'])


def test_deterministic_and_written_with_pixels(tool, tmp_path):
    out = tmp_path / 'syn.json'
    tool.main([str(out), '--images', '30', '--seed', '2', '--pixels', '3',
               '--img-dir', str(tmp_path / 'img')])
    doc = json.loads(out.read_text())
    assert doc == json.loads(json.dumps(tool.make_synthetic_coco(30, seed=2)))
    assert sorted(p.name for p in (tmp_path / 'img').iterdir()) == [
        im['file_name'] for im in doc['images'][:3]]
    im = doc['images'][0]
    pix = cv2.imread(str(tmp_path / 'img' / im['file_name']))
    assert pix.shape == (im['height'], im['width'], 3)
    with pytest.raises(SystemExit):
        tool.main([str(out), '--pixels', '3'])  # no --img-dir


def test_oracle_detections(tool, doc):
    """Up to 100 per (image, class present), only classes present, box-shaped masks."""
    dets = tool.detections(doc, per_pair=100, seed=0)
    present = {}
    for a in doc['annotations']:
        present.setdefault(a['image_id'], set()).add(tool.COCO_IDS.index(a['category_id']))
    assert [d['img_id'] for d in dets] == [im['id'] for im in doc['images']]
    for d, im in zip(dets, doc['images']):
        counts = Counter(d['labels'].tolist())
        assert set(counts) == present.get(im['id'], set())
        assert all(c == 100 for c in counts.values())
        b = d['bboxes']
        assert (b[:, 2:] > b[:, :2]).all() and (b[:, 2:] <= [im['width'], im['height']]).all()
        boxes = mask_utils.frPyObjects(np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], 1)
                                       .astype(np.float64), im['height'], im['width'])
        # one at a time: pycocotools' area() of more than 255 RLEs fails under numpy 2
        assert [mask_utils.area(m) for m in d['masks']] == [mask_utils.area(m) for m in boxes]
