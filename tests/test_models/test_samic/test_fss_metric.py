"""FewShotSegMetric (episode mIoU / FB-IoU) against hand-computed values."""
import json

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from mmsamantics.evaluation import FewShotSegMetric


def test_mask_and_heatmap_iou(toy_root):
    ann = f'{toy_root}/annotations/instances_val.json'
    coco = COCO(ann)
    classes = [c['name'] for c in coco.loadCats(coco.getCatIds())]
    splits = json.load(open(f'{toy_root}/annotations/splits.json'))
    metric = FewShotSegMetric(ann_file=ann, class_splits=splits)
    metric.dataset_meta = dict(classes=classes)
    img = coco.loadImgs(coco.getImgIds()[0])[0]
    h, w = img['height'], img['width']
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[img['id']]))
    cats = sorted({a['category_id'] for a in anns})
    la, lb = [coco.getCatIds().index(c) for c in cats[:2]]
    gt_a = np.any([coco.annToMask(a) for a in anns if a['category_id'] == cats[0]], 0)
    gt_b = np.any([coco.annToMask(a) for a in anns if a['category_id'] == cats[1]], 0)
    # class a: its exact mask split in two instances + a low-score full mask (filtered);
    # class b: the whole image
    half = gt_a.copy()
    half[:, w // 2:] = False
    masks = torch.from_numpy(np.stack([half, gt_a & ~half, np.ones((h, w), bool),
                                       np.ones((h, w), bool)]))
    gt_maps = torch.zeros(2, 8, 8)
    gt_maps[0, 2:4, 2:4] = 1  # fixation map: 4 px
    pred_maps = torch.zeros(2, 8, 8)
    pred_maps[0, 2:4, 2:5] = 0.9  # 6 px, 4 in common
    metric.score_thr = 0.3
    metric.process({}, [dict(
        img_id=img['id'], ori_shape=(h, w), heatmap_labels=torch.tensor([la, lb]),
        pred_instances=dict(masks=masks, labels=torch.tensor([la, la, la, lb]),
                            scores=torch.tensor([0.9, 0.8, 0.1, 0.5])),
        pred_heatmaps=pred_maps, gt_heatmaps=gt_maps,
        ref_instances=dict(labels=torch.tensor([la, lb])))])
    out = metric.compute_metrics(metric.results)
    iou_b = gt_b.sum() / (h * w)
    assert out['mIoU'] == pytest.approx((1.0 + iou_b) / 2)
    fg = (gt_a.sum() + gt_b.sum()) / (gt_a.sum() + h * w)
    # background: episode a is exact; episode b predicts no background at all
    bg = (h * w - gt_a.sum() + 0) / ((h * w - gt_a.sum()) + (h * w - gt_b.sum()))
    assert out['FB-IoU'] == pytest.approx((fg + bg) / 2)
    # class b: no fixation and no predicted blob: a class with an empty union scores 1
    assert out['heatmap_mIoU'] == pytest.approx((4 / 6 + 1.0) / 2)
    name_a = classes[la]
    split_a = [s for s, names in splits.items() if name_a in names][0]
    assert f'{split_a}_mIoU' in out


def test_metric_errors(tmp_path):
    metric = FewShotSegMetric()
    metric.dataset_meta = dict(classes=['a'])
    with pytest.raises(KeyError, match='heatmap_labels'):
        metric.process({}, [dict(img_id=0)])
    with pytest.raises(ValueError, match='no episode'):
        metric.compute_metrics([[]])
    with pytest.raises(FileNotFoundError, match='ann_file'):
        FewShotSegMetric(ann_file=str(tmp_path / 'none.json'))
