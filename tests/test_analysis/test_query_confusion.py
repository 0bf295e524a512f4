"""Query confusion of open-mode predictions: hand-built predictions with known IoUs and scores."""
import json
import pickle

import pytest
import torch

from helpers import load_tool
from mmsamantics.analysis import confusion_table, query_confusion

TOOL = 'tools/analysis/query_confusion.py'
CLASSES = ['red circle', 'red square', 'blue circle']
BOX = [0., 0., 10., 10.]  # xyxy; COCO xywh [0, 0, 10, 10]


def coco_gt() -> dict:
    """Image 1: a red circle (A) and a red square (B); image 2: a blue circle (C) and a crowd
    blue circle (skipped); image 3 (no predictions): a red circle, not counted."""
    anns = [(1, 1, [0, 0, 10, 10], 0), (1, 2, [20, 0, 10, 10], 0), (2, 3, [0, 0, 10, 10], 0),
            (2, 3, [0, 0, 10, 10], 1), (3, 1, [0, 0, 10, 10], 0)]
    return dict(images=[dict(id=i, width=64, height=64) for i in (1, 2, 3)],
                annotations=[dict(id=k + 1, image_id=img, category_id=cat, bbox=box,
                                  area=box[2] * box[3], iscrowd=crowd)
                             for k, (img, cat, box, crowd) in enumerate(anns)],
                categories=[dict(id=k + 1, name=n) for k, n in enumerate(CLASSES)])


def record(img_id: int, dets: list) -> dict:
    """A DumpDetResults record of (xyxy box, score, label) detections."""
    return dict(img_id=img_id, pred_instances=dict(
        bboxes=torch.tensor([d[0] for d in dets]).reshape(-1, 4),
        scores=torch.tensor([d[1] for d in dets]), labels=torch.tensor([d[2] for d in dets])))


def predictions() -> list:
    return [
        record(1, [(BOX, 0.9, 0),                # on A, its own class
                   ([0., 0., 10., 8.], 0.6, 1),  # on A (IoU 0.8), red square queried
                   ([0., 0., 10., 4.], 0.95, 2),  # IoU 0.4 with A: below 0.5
                   ([20., 0., 30., 10.], 0.5, 1),  # on B, its own class ...
                   ([20., 0., 30., 10.], 0.7, 0),  # ... beaten by red circle queried
                   ([20., 0., 30., 10.], 0.2, 0)]),  # a weaker one: the max counts
        record(2, [(BOX, 0.4, 2), (BOX, 0.4, 0)]),  # C: a tie is no win
    ]


def approx(x):
    return pytest.approx(x, abs=1e-6)


def test_matrix_wins_and_groups():
    res = query_confusion(predictions(), coco_gt(), CLASSES)
    assert res['objects'] == {'red circle': 1, 'red square': 1, 'blue circle': 1}
    assert res['matrix'] == [approx([0.9, 0.6, 0.]), approx([0.7, 0.5, 0.]),
                             approx([0.4, 0., 0.4])]
    assert res['own_wins'] == {'red circle': 1., 'red square': 0., 'blue circle': 0.}
    assert res['own_wins_all'] == approx(1 / 3)
    assert (res['images'], res['images_without_predictions']) == (2, 1)
    g = res['groups']
    # own 0.9 / 0.5 / 0.4; same attribute (red, other shape) 0.6 / 0.7 / none (0);
    # same kind (circle, other colour) 0 / none / 0.4; other none / 0 / 0
    assert g['own'] == dict(mean_max_score=approx(0.6), frac_above=1.)
    assert g['same_attribute'] == dict(mean_max_score=approx(1.3 / 3), frac_above=approx(2 / 3))
    assert g['same_kind'] == dict(mean_max_score=approx(0.4 / 3), frac_above=approx(1 / 3))
    assert g['other'] == dict(mean_max_score=0., frac_above=0.)
    assert g['own_beats_same_attribute'] == approx(2 / 3)
    json.dumps(res)  # JSON-ready
    table = confusion_table(res)
    assert 'red square       1  0.500  0.000  red circle (0.700)' in table
    assert 'own beats same attribute, other kind: 0.667' in table


def test_only_some_classes_and_iou_thr():
    res = query_confusion(predictions(), coco_gt(), CLASSES,
                          classes_of_gt=['red circle', 'red square'])
    assert res['matrix'][2] is None and res['own_wins']['blue circle'] is None
    assert res['groups']['own']['mean_max_score'] == approx(0.7)
    assert res['groups']['own_beats_same_attribute'] == 0.5
    res = query_confusion(predictions(), coco_gt(), CLASSES, iou_thr=0.3)
    assert res['matrix'][0] == approx([0.9, 0.6, 0.95])  # the IoU-0.4 detection now counts
    assert res['own_wins']['red circle'] == 0.
    # names that are not "<attribute> <kind>": no grouped summary
    gt = coco_gt()
    gt['categories'][2]['name'] = 'cat'
    res = query_confusion(predictions(), gt, ['red circle', 'red square', 'cat'])
    assert res['groups'] is None and res['own_wins']['cat'] == 0.


def test_errors():
    bad = predictions()
    bad[1]['pred_instances']['labels'] = torch.tensor([2, 3])
    with pytest.raises(ValueError, match='image 2: prediction label 3 is not an index into '
                       'the 3 classes'):
        query_confusion(bad, coco_gt(), CLASSES)
    with pytest.raises(ValueError, match='image 7 of the predictions is not an image of'):
        query_confusion(predictions() + [record(7, [])], coco_gt(), CLASSES)
    with pytest.raises(ValueError, match=r"category 'blue circle' .* not among"):
        query_confusion(predictions(), coco_gt(), CLASSES[:2])
    with pytest.raises(ValueError, match=r"\['green star'\] are not among"):
        query_confusion(predictions(), coco_gt(), CLASSES, classes_of_gt=['green star'])
    with pytest.raises(ValueError, match='records tools/test.py --out writes'):
        query_confusion([{'img_id': 1}], coco_gt(), CLASSES)


@pytest.mark.e2e
def test_cli(tmp_path, capsys):
    tool = load_tool(TOOL)
    preds, ann, splits, out = (str(tmp_path / n) for n in
                               ('preds.pkl', 'ann.json', 'splits.json', 'out.json'))
    with open(preds, 'wb') as f:
        pickle.dump(predictions(), f)
    with open(ann, 'w') as f:
        json.dump(coco_gt(), f)
    bad = str(tmp_path / 'other_classes.pkl')
    with open(bad, 'wb') as f:
        pickle.dump([record(1, [(BOX, 0.5, 5)])], f)
    with open(splits, 'w') as f:
        json.dump(dict(base=CLASSES[:2], novel=CLASSES[2:]), f)
    tool.main([preds, ann, '--only-split', 'base', '--splits-file', splits, '--out', out])
    printed = capsys.readouterr().out
    assert 'blue circle' not in printed.split('\n\n')[0]  # novel objects not counted
    assert 'own beats same attribute, other kind: 0.500' in printed
    with open(out) as f:
        saved = json.load(f)
    assert saved['matrix'][2] is None and saved['only_split'] == 'base'
    assert saved['matrix'][1] == approx([0.7, 0.5, 0.])
    cases = [([preds, 'no.json'], "annotation file 'no.json' not found"),
             (['no.pkl', ann], "predictions pickle 'no.pkl' not found"),
             ([preds, ann, '--only-split', 'base'], '--only-split needs --splits-file'),
             ([preds, ann, '--only-split', 'x', '--splits-file', splits], "no split 'x'"),
             ([bad, ann], 'image 1: prediction label 5 is not an index into the 3 classes'),
             ]
    for argv, msg in cases:
        with pytest.raises(SystemExit) as e:
            tool.main(argv)
        assert msg in str(e.value), (argv, e.value)
