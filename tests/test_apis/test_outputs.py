"""A result of the inference API (JSON-ready, RLE masks) turns back into the predictions it
was made from, which is what ``InContextInferencer.visualize`` draws."""
import json

import numpy as np
import torch

from mmsamantics.apis.outputs import result_to_instances
from mmsamantics.utils.rle import masks_to_rle


def test_result_to_instances_gives_back_boxes_scores_labels_and_masks():
    m = np.random.default_rng(0).random((2, 6, 4)) > 0.5
    result = json.loads(json.dumps(dict(boxes=[[0, 0, 2, 3], [1, 1, 4, 5]], scores=[0.5, 0.25],
                                        label_ids=[0, 3], masks=masks_to_rle(m))))
    pred = result_to_instances(result)
    assert pred.masks.shape == (2, 6, 4) and pred.masks.dtype == torch.uint8
    np.testing.assert_array_equal(pred.masks.numpy().astype(bool), m)
    assert pred.labels.tolist() == [0, 3] and pred.scores.tolist() == [0.5, 0.25]
    assert pred.bboxes.tolist() == [[0, 0, 2, 3], [1, 1, 4, 5]]
    without = result_to_instances(dict(result, masks=[]))
    assert 'masks' not in without and len(without) == 2
