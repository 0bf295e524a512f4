"""Instance IoU and confusion-matrix mIoU against direct numpy computations."""
import numpy as np
import pytest

from mmsamantics.prompt_study import mask_iou
from mmsamantics.wsss import SemanticIoU, confusion_matrix, iou_from_confusion


def test_mask_iou_matches_direct_counts():
    rng = np.random.default_rng(0)
    pred, gt = rng.random((5, 20, 30)) > 0.5, rng.random((5, 20, 30)) > 0.6
    expected = [(p & g).sum() / (p | g).sum() for p, g in zip(pred, gt)]
    np.testing.assert_allclose(mask_iou(pred, gt), expected)
    a = np.zeros((10, 10), bool)
    a[2:6, 2:6] = True  # 16 px
    b = np.zeros((10, 10), bool)
    b[4:8, 4:8] = True  # 16 px, overlap 2x2 = 4
    assert mask_iou(a, b) == pytest.approx(4 / 28)
    assert mask_iou(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0
    with pytest.raises(ValueError, match='shapes differ'):
        mask_iou(a, b[:5])


def test_miou_over_images_matches_direct_per_class_counts():
    rng = np.random.default_rng(1)
    k = 5
    preds = [rng.integers(0, k, (12, 17)) for _ in range(3)]
    gts = [rng.integers(0, k, (12, 17)) for _ in range(3)]
    gts[0][:3] = 255  # ignored pixels
    gts = [np.where(g == 4, 3, g) if i else g for i, g in enumerate(gts)]
    m = SemanticIoU([f'c{i}' for i in range(k)])
    for p, g in zip(preds, gts):
        m.add(p, g)
    P, G = np.concatenate([p.ravel() for p in preds]), np.concatenate([g.ravel() for g in gts])
    P, G = P[G != 255], G[G != 255]
    direct = [((P == c) & (G == c)).sum() / ((P == c) | (G == c)).sum() for c in range(k)]
    s = m.summary()
    np.testing.assert_allclose([r['iou'] for r in s['per_class']], direct)
    assert s['miou'] == pytest.approx(np.mean(direct))
    assert s['miou_fg'] == pytest.approx(np.mean(direct[1:]))
    assert s['pixel_acc'] == pytest.approx((P == G).mean())
    assert s['per_class'][2]['gt_pixels'] == (G == 2).sum()


def test_absent_classes_are_left_out_and_false_positives_count():
    gt = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 2, 1, 1]])  # class 2 predicted but never in the GT; class 3 nowhere
    conf = confusion_matrix(pred, gt, 4)
    assert conf.tolist() == [[1, 0, 1, 0, 0], [0, 2, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    iou = iou_from_confusion(conf)
    np.testing.assert_allclose(iou[:3], [0.5, 1.0, 0.0])
    assert np.isnan(iou[3])
    m = SemanticIoU(['bg', 'a', 'b', 'c'])
    m.add(pred, gt)
    s = m.summary()
    assert s['miou'] == pytest.approx(0.5) and s['per_class'][3]['iou'] is None


def test_unlabelled_predictions_are_misses_not_false_positives():
    gt = np.array([[0, 0, 1, 1, 255]])
    pred = np.array([[0, 255, 1, 255, 1]])  # the GT-ignored pixel is not counted at all
    m = SemanticIoU(['bg', 'a'])
    m.add(pred, gt)
    s = m.summary()
    # bg: TP 1, GT 2, predicted 1 -> 1/2; a: TP 1, GT 2, predicted 1 -> 1/2
    assert [r['iou'] for r in s['per_class']] == [0.5, 0.5]
    assert s['unlabelled_pixels'] == 2 and s['pixel_acc'] == pytest.approx(0.5)


def test_bad_label_maps():
    with pytest.raises(ValueError, match='shapes differ'):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 3)), 3)
    with pytest.raises(ValueError, match='outside 0..2'):
        confusion_matrix(np.full((2, 2), 7), np.zeros((2, 2)), 3)
