import json

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from mmsamantics.datasets import toy_classes, toy_splits
from mmsamantics.evaluation import InContextCocoMetric


def _gt_as_predictions(coco, keep_classes):
    """Predictions equal to the ground truth for ``keep_classes`` (perfect there, absent elsewhere)."""
    names = toy_classes()
    samples = []
    for im in coco['images']:
        anns = [a for a in coco['annotations'] if a['image_id'] == im['id']
                and names[a['category_id'] - 1] in keep_classes]
        boxes = torch.tensor([[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                               a['bbox'][1] + a['bbox'][3]] for a in anns]).reshape(-1, 4)
        masks = np.stack([mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(
            a['segmentation'], im['height'], im['width']))) for a in anns]) if anns else \
            np.zeros((0, im['height'], im['width']), np.uint8)
        samples.append(dict(img_id=im['id'], ori_shape=(im['height'], im['width']),
                            pred_instances=dict(
                                bboxes=boxes, scores=torch.ones(len(anns)),
                                labels=torch.tensor([a['category_id'] - 1 for a in anns],
                                                    dtype=torch.long),
                                masks=torch.from_numpy(masks).bool())))
    return samples


@pytest.mark.parametrize('keep', ['all', 'base'])
def test_split_metrics(toy_root, keep):
    ann = f'{toy_root}/annotations/instances_val.json'
    coco = json.load(open(ann))
    keep_classes = toy_classes() if keep == 'all' else toy_splits()['base']
    metric = InContextCocoMetric(ann_file=ann, metric=['bbox', 'segm'],
                                 class_splits_file=f'{toy_root}/annotations/splits.json')
    metric.dataset_meta = dict(classes=toy_classes())
    metric.process({}, _gt_as_predictions(coco, keep_classes))
    res = metric.evaluate(len(coco['images']))
    assert res['coco/base_bbox_mAP'] == pytest.approx(1.0, abs=1e-3)
    assert res['coco/base_segm_mAP'] == pytest.approx(1.0, abs=1e-3)
    novel_present = any(toy_classes()[a['category_id'] - 1] in toy_splits()['novel']
                        for a in coco['annotations'])
    if keep == 'all':
        assert res['coco/bbox_mAP'] == pytest.approx(1.0, abs=1e-3)
        if novel_present:
            assert res['coco/novel_bbox_mAP'] == pytest.approx(1.0, abs=1e-3)
    elif novel_present:
        assert res['coco/novel_bbox_mAP'] == pytest.approx(0.0, abs=1e-3)
        assert res['coco/bbox_mAP'] < 1.0


def test_segm_without_masks_is_a_clear_error(toy_root):
    ann = f'{toy_root}/annotations/instances_val.json'
    coco = json.load(open(ann))
    samples = _gt_as_predictions(coco, toy_classes())
    for s in samples:  # boxes only, as a detector with_mask=False predicts
        del s['pred_instances']['masks']
    metric = InContextCocoMetric(ann_file=ann, metric=['bbox', 'segm'])
    metric.dataset_meta = dict(classes=toy_classes())
    metric.process({}, samples)
    with pytest.raises(ValueError, match='test_evaluator.metric=bbox'):
        metric.evaluate(len(coco['images']))
    boxes_only = InContextCocoMetric(ann_file=ann, metric='bbox')
    boxes_only.dataset_meta = dict(classes=toy_classes())
    boxes_only.process({}, samples)
    assert boxes_only.evaluate(len(coco['images']))['coco/bbox_mAP'] == pytest.approx(1.0, abs=1e-3)
