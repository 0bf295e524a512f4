"""The authors' reference selection: every acceptance rule, the shuffle, the stop, the sort."""
import json
import os.path as osp
import random

import pytest

from helpers import load_tool
from mmsamantics.datasets import load_reference_set
from mmsamantics.datasets.reference_selection import (AUTHORS_THRESHOLDS, EXCLUDED_IDS,
                                                      select_authors_reference_set)


def _ann(i, img, cat, box, area, iscrowd=0):
    x, y, w, h = box
    return dict(id=i, image_id=img, category_id=cat, bbox=[float(v) for v in box],
                area=float(area), iscrowd=iscrowd,
                segmentation=[[x, y, x + w, y, x + w, y + h, x, y + h]])  # the box as polygon


def rules_coco():
    """16 annotations, 2 classes; 200 x 200 images unless noted. Frame test: the 15-px frame
    of a 200 x 200 image has 200**2 - 170**2 = 11100 px, 5 % of it is 555 px."""
    good = [50, 50, 60, 60]
    anns = [
        _ann(1, 1, 1, good, 3000),                 # cat: passes every per-annotation rule
        _ann(2, 2, 1, good, 1200),                 # cat: passes (area 1200 > 1024)
        _ann(3, 3, 1, good, 3000),                 # cat: passes
        _ann(4, 4, 2, good, 3000),                 # dog: passes
        _ann(5, 1, 2, [130, 130, 40, 40], 1500),   # dog: passes (IoU 0 with id 1, same image)
        _ann(6, 5, 2, good, 3000, iscrowd=1),      # crowd
        _ann(7, 6, 2, good, 1024),                 # area == 32**2: not > min_area
        _ann(8, 7, 2, good, 20000),                # area == 0.5 * 200 * 200: not < max
        _ann(9, 8, 2, [100, 20, 60, 60], 1500),    # image 600 x 100: aspect 6 > 5
        _ann(10, 9, 2, [9, 50, 60, 60], 3000),     # x = 9 < 10 (mask: 6 x 60 = 360 px < 555)
        _ann(11, 10, 2, [10, 10, 180, 60], 10000),  # box margins exact; mask ~1450 px, 13 %
        _ann(12, 11, 2, [40, 40, 60, 60], 3000),   # box IoU 0.72 with the crowd region id 13
        _ann(13, 11, 1, [45, 45, 60, 60], 3000, iscrowd=1),  # crowd
        _ann(50138, 12, 2, good, 3000),            # one of the authors' excluded ids
        _ann(14, 13, 2, [100, 20, 60, 60], 1500),  # image 500 x 100: aspect 5, inclusive
        _ann(15, 14, 1, [10, 10, 40, 40], 1500),   # x = y = 10 exact; mask ~375 px, 3.4 %
    ]
    size = {8: (600, 100), 13: (500, 100)}
    images = [dict(id=i, file_name=f'{i}.jpg', width=size.get(i, (200, 200))[0],
                   height=size.get(i, (200, 200))[1]) for i in range(1, 15)]
    cats = [dict(id=1, name='cat'), dict(id=2, name='dog')]
    return dict(images=images, annotations=anns, categories=cats)


def test_every_rule_and_the_shuffle_decide():
    coco = rules_coco()
    order = list(range(16))
    random.Random(137).shuffle(order)
    # file positions -> ids: 10, 9, 2, 14, 5, 11, 50138, 1, 13, 8, 12, 4, 6, 7, 15, 3
    assert order == [9, 8, 1, 14, 4, 10, 13, 0, 12, 7, 11, 3, 5, 6, 15, 2]
    ref = select_authors_reference_set(coco, seed=137, max_shots=2)
    # The pass, in shuffled order (n_ref = 2):
    #   10 rejected: box 9 px from the left edge      9 rejected: image aspect 600/100 = 6
    #    2 accepted: cat [2] (image 2)                14 accepted: dog [14] (aspect 5 is in)
    #    5 accepted: dog [14, 5] (image 1): dog full  11 rejected: mask covers 13 % of frame
    # 50138 rejected: excluded id                      1 rejected: image 1 taken by dog 5
    #   13 rejected: crowd                             8 rejected: area == 50 % of image
    #   12 rejected: box IoU 0.72 with crowd id 13     4 rejected: dog already holds 2
    #    6 rejected: crowd                             7 rejected: area == 1024, not > 1024
    #   15 accepted: cat [2, 15]: every class full -> stop after 15 of 16 (id 3 never seen)
    # Sorted by area, largest first: cat 15 (1500) before 2 (1200); dog 14 and 5 both 1500
    # keep their acceptance order (stable), which is not id order.
    assert [(a['id'], a['category_id'], a['shot']) for a in ref['annotations']] == [
        (15, 1, 0), (2, 1, 1), (14, 2, 0), (5, 2, 1)]
    assert ref['info']['annotations_scanned'] == 15
    assert [im['id'] for im in ref['images']] == [1, 2, 13, 14]
    # Seed 64 (ids 3, 50138, 13, 8, 14, 12, 6, 5, 4, 1, 9, 7, 10, 11, 2, 15): cat takes 3
    # first, dog 14 then 5 (4 finds dog full, 1 finds image 1 taken), cat 2 ends the pass;
    # cat sorted 3 (3000) before 2 (1200).
    other = select_authors_reference_set(coco, seed=64, max_shots=2)
    assert [a['id'] for a in other['annotations']] == [3, 2, 14, 5]


def iou_coco():
    """Four 200 x 200 images, each with an 80 x 80 box at (20, 20) that passes every other
    rule, overlapped by a second box shifted right: by 34 px (box IoU 3680 / 9120 = 0.404 >
    0.35) or 43 px (2960 / 9840 = 0.301), the second box a crowd region or an annotation of
    the other class (then it is a candidate too, and the rule is symmetric)."""
    anns, images = [], []
    for img, (shift, crowd) in enumerate(((34, 1), (43, 1), (34, 0), (43, 0)), start=1):
        anns += [_ann(2 * img - 1, img, 1, [20, 20, 80, 80], 6400),
                 _ann(2 * img, img, 2, [20 + shift, 20, 80, 80], 6400, iscrowd=crowd)]
        images.append(dict(id=img, file_name=f'{img}.jpg', width=200, height=200))
    return dict(images=images, annotations=anns,
                categories=[dict(id=1, name='cat'), dict(id=2, name='dog')])


@pytest.mark.parametrize('seed', [0, 1, 7, 42, 64, 137, 2023, 99991])
def test_the_iou_rule_whatever_the_order(seed):
    """Every order of the pass (classes never full: all of it is scanned): a box overlapping
    another by IoU 0.40 is refused, by 0.30 accepted; the image of a pair with IoU 0.30 of
    two classes is taken by whichever comes first."""
    ref = select_authors_reference_set(iou_coco(), seed=seed, max_shots=5)
    ids = sorted(a['id'] for a in ref['annotations'])
    assert 3 in ids and not {1, 2, 5, 6} & set(ids), ids
    assert len({7, 8} & set(ids)) == 1 and len(ids) == 2, ids


def test_file_records_the_procedure_and_reads_back(tmp_path):
    ref = select_authors_reference_set(rules_coco(), seed=137, max_shots=2, classes=['dog'])
    info = ref['info']
    assert info['selection'] == 'authors' and info['seed'] == 137 and info['max_shots'] == 2
    assert info['filters'] == dict(AUTHORS_THRESHOLDS, classes=['dog'])
    assert info['excluded_ids'] == sorted(EXCLUDED_IDS)
    # classes only filters the file: dog's references are those of the 2-class run
    assert [a['id'] for a in ref['annotations']] == [14, 5]
    assert info['shots_available'] == {'dog': 2}
    path = str(tmp_path / 'refs.json')
    json.dump(ref, open(path, 'w'))
    assert [a['id'] for a in load_reference_set(path, 1)[2]] == [14]


def test_bad_arguments():
    coco = rules_coco()
    with pytest.raises(TypeError, match="unknown thresholds \\['min_aera'\\]"):
        select_authors_reference_set(coco, 0, min_aera=10)
    with pytest.raises(ValueError, match='max_frame_pct=0 must be in'):
        select_authors_reference_set(coco, 0, max_frame_pct=0)
    with pytest.raises(ValueError, match='seed must be a non-negative integer'):
        select_authors_reference_set(coco, -1)
    bad = rules_coco()
    bad['annotations'][0]['category_id'] = 9
    with pytest.raises(ValueError, match='annotations \\[1\\] name a category or image'):
        select_authors_reference_set(bad, 0)


@pytest.mark.e2e
def test_cli_selections(tmp_path, capsys):
    tool = load_tool('tools/misc/make_reference_sets.py')
    ann = str(tmp_path / 'ann.json')
    json.dump(rules_coco(), open(ann, 'w'))
    tool.main([ann, '--out-dir', str(tmp_path / 'a'), '--seeds', '137', '--max-shots', '2'])
    assert 'eligible images' not in capsys.readouterr().out
    ref = json.load(open(osp.join(tmp_path, 'a', 'refs_seed137.json')))
    assert [a['id'] for a in ref['annotations']] == [15, 2, 14, 5]
    tool.main([ann, '--out-dir', str(tmp_path / 'p'), '--seeds', '137', '--max-shots', '2',
               '--selection', 'per-class'])
    assert 'eligible images' in capsys.readouterr().out
    ref = json.load(open(osp.join(tmp_path, 'p', 'refs_seed137.json')))
    assert ref['info']['selection'] == 'per-class'
