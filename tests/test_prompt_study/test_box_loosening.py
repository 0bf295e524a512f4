"""Loose-box geometry against hand computations, clipping included."""
import numpy as np
import pytest

from mmsamantics.prompt_study import clip_boxes, loosen_boxes, xywh_to_xyxy


def test_xywh_to_xyxy():
    np.testing.assert_allclose(xywh_to_xyxy([[10, 20, 30, 40], [0, 0, 1, 2]]),
                               [[10, 20, 40, 60], [0, 0, 1, 2]])


def test_per_side_buffer_inside_the_image():
    # w = 50, h = 20: each side moves out by 0.2 * 50 = 10 (x) and 0.2 * 20 = 4 (y)
    out = loosen_boxes(np.array([[100., 100., 150., 120.]]), 0.2, (300, 400))
    np.testing.assert_allclose(out, [[90, 96, 160, 124]])
    w, h = out[0, 2] - out[0, 0], out[0, 3] - out[0, 1]
    assert w == pytest.approx(1.4 * 50) and h == pytest.approx(1.4 * 20)


def test_total_buffer_splits_the_fraction_over_both_sides():
    out = loosen_boxes(np.array([[100., 100., 150., 120.]]), 0.2, (300, 400), mode='total')
    np.testing.assert_allclose(out, [[95, 98, 155, 122]])  # 1.2 w x 1.2 h


def test_clipped_to_the_image():
    boxes = np.array([[2., 5., 42., 25.],      # near the top-left corner
                      [370., 280., 400., 300.],  # touching the bottom-right corner
                      [0., 0., 400., 300.]])     # the whole image
    out = loosen_boxes(boxes, 0.2, (300, 400))
    np.testing.assert_allclose(out, [[0, 1, 50, 29], [364, 276, 400, 300], [0, 0, 400, 300]])
    assert (out[:, [0, 1]] >= 0).all() and (out[:, 2] <= 400).all() and (out[:, 3] <= 300).all()
    np.testing.assert_allclose(clip_boxes([[-5, -1, 500, 301]], (300, 400)), [[0, 0, 400, 300]])


def test_zero_fraction_and_empty_input():
    b = np.array([[1., 2., 3., 4.]])
    np.testing.assert_allclose(loosen_boxes(b, 0.0, (10, 10)), b)
    assert loosen_boxes(np.zeros((0, 4)), 0.2, (10, 10)).shape == (0, 4)


@pytest.mark.parametrize('kwargs, match', [
    (dict(fraction=-0.1), '>= 0'),
    (dict(mode='diagonal'), 'unknown loosening mode'),
    (dict(img_shape=(0, 10)), 'positive'),
])
def test_bad_inputs(kwargs, match):
    args = dict(boxes=np.array([[1., 1., 5., 5.]]), fraction=0.2, img_shape=(10, 10))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        loosen_boxes(**args)


def test_xywh_boxes_passed_as_xyxy_are_refused():
    with pytest.raises(ValueError, match='xywh_to_xyxy'):
        loosen_boxes(np.array([[50., 50., 10., 10.]]), 0.2, (100, 100))
