"""Label-map composition of overlapping instances, palette PNGs and GT maps from COCO."""
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from mmsamantics.wsss import (coco_classes, compose_label_map, gt_label_map, load_label_png,
                              save_label_png, voc_palette)


def _masks():
    big = np.zeros((10, 10), bool)
    big[0:8, 0:8] = True      # 64 px, class 1
    small = np.zeros((10, 10), bool)
    small[4:10, 4:10] = True  # 36 px, class 2; overlap [4:8, 4:8]
    return np.stack([big, small])


def test_score_rule_puts_the_higher_score_on_top():
    m = _masks()
    out = compose_label_map(m, [1, 2], (10, 10), scores=[0.9, 0.5], rule='score')
    expected = np.zeros((10, 10), np.uint8)
    expected[m[1]] = 2
    expected[m[0]] = 1  # class 1 scores higher: it wins the overlap
    np.testing.assert_array_equal(out, expected)
    out = compose_label_map(m, [1, 2], (10, 10), scores=[0.5, 0.9], rule='score')
    assert out[5, 5] == 2 and out[0, 0] == 1 and out[9, 9] == 2


def test_area_rule_and_ties():
    m = _masks()
    # the smaller instance (class 2) on top whatever the scores
    out = compose_label_map(m, [1, 2], (10, 10), scores=[0.9, 0.1], rule='area')
    assert out[5, 5] == 2 and out[1, 1] == 1
    # equal scores under the score rule: the smaller area wins
    out = compose_label_map(m, [1, 2], (10, 10), rule='score')
    assert out[5, 5] == 2


def test_conflicts_can_be_ignored_and_same_class_overlaps_are_not_conflicts():
    m = _masks()
    out = compose_label_map(m, [1, 2], (10, 10), ignore_conflicts=True)
    assert (out[4:8, 4:8] == 255).all() and out[0, 0] == 1 and out[9, 9] == 2
    assert (out == 255).sum() == 16
    same = compose_label_map(m, [3, 3], (10, 10), ignore_conflicts=True)
    np.testing.assert_array_equal(same, np.where(m.any(0), 3, 0))


def test_empty_and_bad_inputs():
    assert (compose_label_map(np.zeros((0, 4, 6), bool), [], (4, 6)) == 0).all()
    with pytest.raises(ValueError, match='1..254'):
        compose_label_map(_masks(), [0, 1], (10, 10))
    with pytest.raises(ValueError, match='2 masks but 1 labels'):
        compose_label_map(_masks(), [1], (10, 10))
    with pytest.raises(ValueError, match='unknown overlap rule'):
        compose_label_map(_masks(), [1, 2], (10, 10), rule='random')


def test_palette_png_roundtrip(tmp_path):
    pal = voc_palette()
    assert pal[:3].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0]]  # VOC bg, aeroplane, bicycle
    assert pal[15].tolist() == [192, 128, 128] and len({tuple(c) for c in pal}) == 256
    lm = np.random.default_rng(0).integers(0, 13, (7, 9)).astype(np.uint8)
    lm[0, 0] = 255
    save_label_png(lm, str(tmp_path / 'a.png'))
    assert Image.open(tmp_path / 'a.png').mode == 'P'
    np.testing.assert_array_equal(load_label_png(str(tmp_path / 'a.png')), lm)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / 'rgb.png')
    with pytest.raises(ValueError, match='class indices, not colours'):
        load_label_png(str(tmp_path / 'rgb.png'))
    with pytest.raises(FileNotFoundError, match='nope.png'):
        load_label_png(str(tmp_path / 'nope.png'))


def test_gt_map_from_coco_with_overlap_and_crowd(tmp_path):
    poly = lambda x0, y0, x1, y1: [[x0, y0, x1, y0, x1, y1, x0, y1]]  # noqa: E731
    data = dict(images=[dict(id=1, file_name='a.jpg', height=20, width=20)],
                categories=[dict(id=7, name='cat'), dict(id=3, name='dog')],
                annotations=[
                    dict(id=1, image_id=1, category_id=7, segmentation=poly(0, 0, 12, 12),
                         bbox=[0, 0, 12, 12], area=144, iscrowd=0),
                    dict(id=2, image_id=1, category_id=3, segmentation=poly(8, 8, 14, 14),
                         bbox=[8, 8, 6, 6], area=36, iscrowd=0),
                    dict(id=3, image_id=1, category_id=7, segmentation=poly(16, 16, 19, 19),
                         bbox=[16, 16, 3, 3], area=9, iscrowd=1)])
    (tmp_path / 'a.json').write_text(json.dumps(data))
    coco = COCO(str(tmp_path / 'a.json'))
    cat_to_label, names = coco_classes(coco)
    assert cat_to_label == {3: 1, 7: 2} and names == ['background', 'dog', 'cat']
    out = gt_label_map(coco, 1, cat_to_label)
    masks = {a['id']: coco.annToMask(a).astype(bool) for a in data['annotations']}
    assert (out[masks[1] & ~masks[2]] == 2).all()
    assert (out[masks[2]] == 1).all()      # the smaller dog in front of the cat
    assert (out[masks[3]] == 255).all()    # crowd = ignore
    assert (out[~(masks[1] | masks[2] | masks[3])] == 0).all()
