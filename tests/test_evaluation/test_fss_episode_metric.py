"""FewShotSegMetric on few-shot episodes (their own ground truth, 255 pixels ignored) against
a hand computation: two classes, three 4 x 4 episodes."""
import logging

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger

from mmsamantics.datasets import encode_mask
from mmsamantics.evaluation import FewShotSegMetric


def grid(*pixels):
    m = np.zeros((4, 4), bool)
    for y, x in pixels:
        m[y, x] = True
    return m


def sample(label, gt, ignore, pred_masks, pred_labels):
    return dict(heatmap_labels=torch.tensor([label]), ori_shape=(4, 4),
                pred_instances=dict(masks=torch.from_numpy(np.stack(pred_masks)),
                                    labels=torch.tensor(pred_labels),
                                    scores=torch.ones(len(pred_labels))),
                fss_episode=dict(label=label, gt=encode_mask(gt), ignore=encode_mask(ignore)))


def episodes():
    col0 = [(y, 0) for y in range(4)]
    return [
        # class 0: gt the top-left 2 x 2, pixels (0, 2) and (0, 3) ignored; the prediction
        # covers (0, 0), (0, 1), (1, 0) and the ignored (0, 2).
        # fg: I = 3, U = 4 (the ignored pixel counts in neither); bg: I = 16 - 5 - 1 = 10
        # (pixels outside P | G, less the ignored (0, 3)), U = 16 - 3 - 2 = 11
        sample(0, grid((0, 0), (0, 1), (1, 0), (1, 1)), grid((0, 2), (0, 3)),
               [grid((0, 0), (0, 1), (0, 2), (1, 0))], [0]),
        # class 0: gt the bottom row, nothing predicted (a class-1 mask does not count):
        # fg I = 0, U = 4; bg I = 12, U = 16
        sample(0, grid(*[(3, x) for x in range(4)]), grid(),
               [grid((3, 0), (3, 1))], [1]),
        # class 1: gt the left column, (3, 3) ignored; two masks whose union is the left
        # column plus (0, 1) and (1, 1): fg I = 4, U = 6; bg I = 10 - 1 = 9, U = 12 - 1 = 11
        sample(1, grid(*col0), grid((3, 3)), [grid(*col0[:2]), grid(*col0[2:], (0, 1), (1, 1))],
               [1, 1]),
    ]


def test_episode_miou_fbiou_by_hand():
    metric = FewShotSegMetric()
    metric.dataset_meta = dict(classes=['a', 'b', 'c'])  # 'c': no episode, not in the mean
    metric.process({}, episodes())
    logger = MMLogger.get_current_instance()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        out = metric.compute_metrics(metric.results)
    finally:
        logger.removeHandler(handler)
    iou_a, iou_b = (3 + 0) / (4 + 4), 4 / 6
    assert out['mIoU'] == pytest.approx((iou_a + iou_b) / 2)
    fg, bg = (3 + 0 + 4) / (4 + 4 + 6), (10 + 12 + 9) / (11 + 16 + 11)
    assert out['FB-IoU'] == pytest.approx((fg + bg) / 2)
    text = [r.getMessage() for r in records]
    assert any('episodes: 3, classes: 2 (IoU a: 0.375, b: 0.667)' in t for t in text), text
    assert any("without any episode (not in the mIoU): ['c']" in t for t in text), text


def test_episode_must_query_its_class():
    metric = FewShotSegMetric()
    metric.dataset_meta = dict(classes=['a', 'b'])
    bad = episodes()[0]
    bad['heatmap_labels'] = torch.tensor([1])
    with pytest.raises(ValueError, match='episode of class 0 but the model answered'):
        metric.process({}, [bad])
