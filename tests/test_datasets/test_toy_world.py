import json
import os.path as osp

import numpy as np
from pycocotools import mask as mask_utils

from mmsamantics.datasets import (is_current_toy_world, make_toy_world, toy_classes,
                                  toy_splits)


def test_toy_world_is_deterministic_and_valid(tmp_path):
    a = make_toy_world(str(tmp_path / 'a'), seed=3, num_train=10, num_val=2)
    b = make_toy_world(str(tmp_path / 'b'), seed=3, num_train=10, num_val=2)
    c = make_toy_world(str(tmp_path / 'c'), seed=4, num_train=10, num_val=2)
    ja, jb, jc = (json.load(open(x['train'])) for x in (a, b, c))
    assert ja['annotations'] == jb['annotations']
    assert ja['annotations'] != jc['annotations']
    assert open(osp.join(tmp_path, 'a/train/000003.png'), 'rb').read() == \
        open(osp.join(tmp_path, 'b/train/000003.png'), 'rb').read()

    cats = {c['id']: c for c in ja['categories']}
    assert [cats[i]['name'] for i in sorted(cats)] == toy_classes()
    assert {c['name'] for c in cats.values() if c['split'] == 'novel'} == set(toy_splits()['novel'])
    imgs = {im['id']: im for im in ja['images']}
    per_img = {}
    for ann in ja['annotations']:
        im = imgs[ann['image_id']]
        per_img.setdefault(ann['image_id'], set()).add(ann['category_id'])
        rles = mask_utils.frPyObjects(ann['segmentation'], im['height'], im['width'])
        m = mask_utils.decode(mask_utils.merge(rles))
        # polygon area and box agree with the stored (visible-mask) area and box
        assert abs(m.sum() - ann['area']) <= 0.15 * ann['area'] + 30
        ys, xs = np.nonzero(m)
        x, y, w, h = ann['bbox']
        assert abs(xs.min() - x) <= 1 and abs(ys.min() - y) <= 1
        assert w >= 1 and h >= 1 and ann['iscrowd'] == 0
    # several instances per image, several classes in some images
    counts = {}
    for ann in ja['annotations']:
        counts[ann['image_id']] = counts.get(ann['image_id'], 0) + 1
    assert np.mean(list(counts.values())) > 1.5
    assert max(len(v) for v in per_img.values()) >= 2
    assert json.load(open(a['splits'])) == toy_splits()
    assert is_current_toy_world(str(tmp_path / 'a'), seed=3)
    assert not is_current_toy_world(str(tmp_path / 'a'), seed=0)
    assert not is_current_toy_world(str(tmp_path / 'missing'))
