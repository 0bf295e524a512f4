"""The COCO results that tools/infer.py and the inferencer write: boxes xyxy -> xywh in
original pixels, RLE masks of the image's size, category ids by class name; results equal to
a ground truth score AP 1 with pycocotools (a wrong box format or mask size would not)."""
import numpy as np
import torch
from mmengine.structures import InstanceData
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from mmsamantics.apis.outputs import coco_results, to_result


def _objects():
    """Two objects on a 60 x 80 image: (xyxy box, mask)."""
    out = []
    for x0, y0, x1, y1 in ((10, 20, 50, 40), (55, 5, 75, 55)):
        m = np.zeros((60, 80), bool)
        m[y0:y1, x0:x1] = True
        out.append(((x0, y0, x1, y1), m))
    return out


def test_result_format():
    objs = _objects()
    pred = InstanceData(bboxes=torch.tensor([b for b, _ in objs], dtype=torch.float32),
                        scores=torch.tensor([0.9, 0.123456789]),
                        labels=torch.tensor([1, 0]),
                        masks=torch.from_numpy(np.stack([m for _, m in objs])))
    res = to_result(pred, ['cat', 'dog'], 'a.png', 0, (60, 80))
    dets = coco_results([res], [7], {'cat': 3, 'dog': 18})
    assert [d['bbox'] for d in dets] == [[10.0, 20.0, 40.0, 20.0], [55.0, 5.0, 20.0, 50.0]]
    assert [(d['image_id'], d['category_id']) for d in dets] == [(7, 18), (7, 3)]
    assert dets[1]['score'] == 0.12346
    for d, (_, m) in zip(dets, objs):
        rle = d['segmentation']
        assert rle['size'] == [60, 80] and isinstance(rle['counts'], str)
        assert np.array_equal(mask_utils.decode(dict(rle, counts=rle['counts'].encode())), m)
    # the model saw the image at half size: boxes and masks come back in original pixels
    half = InstanceData(bboxes=pred.bboxes / 2, scores=pred.scores, labels=pred.labels,
                        masks=pred.masks[:, ::2, ::2].clone())
    res = to_result(half, ['cat', 'dog'], 'a.png', 0, (60, 80), work_shape=(30, 40))
    dets2 = coco_results([res], [7], {'cat': 3, 'dog': 18})
    assert [d['bbox'] for d in dets2] == [d['bbox'] for d in dets]
    assert all(d['segmentation']['size'] == [60, 80] for d in dets2)


def test_results_equal_to_the_ground_truth_score_ap_1():
    objs = _objects()
    gt = COCO()
    gt.dataset = dict(
        images=[dict(id=7, width=80, height=60, file_name='a.png')],
        categories=[dict(id=3, name='cat'), dict(id=18, name='dog')],
        annotations=[dict(id=i + 1, image_id=7, category_id=c, iscrowd=0,
                          bbox=[x0, y0, x1 - x0, y1 - y0], area=float(m.sum()),
                          segmentation=mask_utils.encode(np.asfortranarray(m.astype(np.uint8))))
                     for i, (((x0, y0, x1, y1), m), c) in enumerate(zip(objs, (3, 18)))])
    for a in gt.dataset['annotations']:
        a['segmentation']['counts'] = a['segmentation']['counts'].decode()
    gt.createIndex()
    pred = InstanceData(bboxes=torch.tensor([b for b, _ in objs], dtype=torch.float32),
                        scores=torch.tensor([0.9, 0.8]), labels=torch.tensor([0, 1]),
                        masks=torch.from_numpy(np.stack([m for _, m in objs])))
    dets = coco_results([to_result(pred, ['cat', 'dog'], 'a.png', 0, (60, 80))], [7],
                        {'cat': 3, 'dog': 18})
    for iou_type in ('bbox', 'segm'):
        ev = COCOeval(gt, gt.loadRes(dets), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        assert ev.stats[0] > 0.99, iou_type
