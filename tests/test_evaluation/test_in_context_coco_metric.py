import contextlib
import io
import json
import sys

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from helpers import load_tool
from mmdet.evaluation import CocoMetric
from mmsamantics.datasets import toy_classes, toy_splits
from mmsamantics.datasets.class_splits import coco_classes, split_classes
from mmsamantics.evaluation import InContextCocoMetric


def _gt_as_predictions(coco, keep_classes):
    """Predictions equal to the ground truth for ``keep_classes`` (perfect there, absent
    elsewhere)."""
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
    assert 'coco/shot_index' not in res and 'coco/query_classes' not in res


def test_evaluation_switches_are_recorded_with_the_metrics(toy_root):
    """A run on one shot of a k-shot draw, or on a subset of classes, says so in its
    metrics (what --metrics-out and the demo's records keep)."""
    ann = f'{toy_root}/annotations/instances_val.json'
    metric = InContextCocoMetric(ann_file=ann, metric=['bbox'])
    metric.dataset_meta = dict(classes=toy_classes(), shot_index=3, query_classes=['red star'],
                               reference_control='none')
    metric.process({}, _gt_as_predictions(json.load(open(ann)), toy_classes()))
    res = metric.evaluate(8)
    assert (res['coco/shot_index'], res['coco/query_classes'],
            res['coco/reference_control']) == (3, ['red star'], 'none')


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


def _noisy_predictions(coco, seed=0):
    """The ground truth of every class, jittered, with random scores, plus false positives of
    random classes: a result whose AP is neither 0 nor 1 and differs from class to class."""
    rng = np.random.default_rng(seed)
    samples = _gt_as_predictions(coco, toy_classes())
    for s in samples:
        p = s['pred_instances']
        n = len(p['bboxes'])
        extra = p['bboxes'][rng.integers(0, max(n, 1), size=n)] if n else p['bboxes']
        p['bboxes'] = torch.cat([p['bboxes'] + torch.from_numpy(
            rng.normal(0, 3, (n, 4))).float(), extra + 9]).clamp(min=0)
        p['scores'] = torch.from_numpy(rng.random(2 * n)).float()
        p['labels'] = torch.cat([p['labels'], torch.from_numpy(
            rng.integers(0, len(toy_classes()), n))])
        p['masks'] = torch.cat([p['masks'], p['masks'][:0].new_zeros(n, *p['masks'].shape[1:])
                                if n else p['masks']])
    return samples


def test_one_evaluation_equals_mmdet_per_split_and_per_class(toy_root):
    """Splits and classes summarized from one evaluation equal mmdet's CocoMetric run once
    for all classes and once per split (and per class, each as a split of one class), each
    from its own loadRes; the metric's packed masks give mmdet's numbers."""
    ann = f'{toy_root}/annotations/instances_val.json'
    coco = json.load(open(ann))
    samples = _noisy_predictions(coco)
    per_class = {f'c{i}': [n] for i, n in enumerate(toy_classes())}
    metric = InContextCocoMetric(ann_file=ann, metric=['bbox', 'segm'], classwise=True,
                                 class_splits_file=f'{toy_root}/annotations/splits.json',
                                 backend='pycocotools')
    reference = InContextCocoMetric(ann_file=ann, metric=['bbox', 'segm'],
                                    class_splits=dict(toy_splits(), **per_class))
    for m in (metric, reference):
        m.dataset_meta = dict(classes=toy_classes())
    metric.process({}, samples)  # masks packed per image
    assert 'mask_counts' in metric.results[0][1] and 'masks' not in metric.results[0][1]
    CocoMetric.process(reference, {}, samples)  # mmdet's records: a dict per mask
    once = metric.compute_metrics(metric.results)
    mmdet = reference._per_subset(reference.results)
    assert 0.05 < once['bbox_mAP'] < 0.95 and 0.05 < once['segm_mAP'] < 0.95
    for key in [k for k in mmdet if not k.startswith('c')]:
        assert once[key] == mmdet[key], key
    present = {toy_classes()[a['category_id'] - 1] for a in coco['annotations']}
    for i, name in enumerate(toy_classes()):
        for m in ('bbox', 'segm'):
            if name in present:
                assert once[f'{m}_mAP/{name}'] == mmdet[f'c{i}_{m}_mAP'], (name, m)
                assert once[f'{m}_mAP_50/{name}'] == mmdet[f'c{i}_{m}_mAP_50'], (name, m)
            else:
                assert f'{m}_mAP/{name}' not in once
    values = {once[f'bbox_mAP_50/{n}'] for n in present}
    assert len(values) > 2  # the classes differ: the comparison is not trivially equal


@pytest.fixture(scope='module')
def synthetic_coco(tmp_path_factory):
    """(annotation file, mmdet's results) of a small COCO-shaped synthetic file with oracle
    detections (up to 100 per image and class present, box-shaped masks)."""
    tool = load_tool('tools/misc/make_synthetic_coco.py')
    doc = tool.make_synthetic_coco(24, seed=3)
    ann = str(tmp_path_factory.mktemp('synthetic') / 'synthetic.json')
    with open(ann, 'w') as f:
        json.dump(doc, f)
    sizes = {im['id']: im for im in doc['images']}
    results = [(dict(img_id=d['img_id'], width=sizes[d['img_id']]['width'],
                     height=sizes[d['img_id']]['height']), d)
               for d in tool.detections(doc, per_pair=100, seed=3)]
    return ann, results


def _coco_metric(ann, backend, **kwargs):
    metric = InContextCocoMetric(ann_file=ann, metric=['bbox', 'segm'], backend=backend,
                                 **kwargs)
    metric.dataset_meta = dict(classes=coco_classes())
    return metric


def test_one_evaluation_equals_per_split_evaluations_on_a_synthetic_coco(synthetic_coco):
    """COCO's 80 classes, COCO-NOVEL's splits, 100 detections per (image, class present):
    the splits from one evaluation equal mmdet's evaluation of each split on its own."""
    ann, results = synthetic_coco
    splits = {s: split_classes(f'coco-{s}') for s in ('base', 'novel')}
    with contextlib.redirect_stdout(io.StringIO()):
        once = _coco_metric(ann, 'pycocotools', class_splits=splits).compute_metrics(results)
        mmdet = _coco_metric(ann, 'pycocotools', class_splits=splits)._per_subset(results)
    assert 0.05 < once['novel_segm_mAP'] < 0.95 and 0.05 < once['base_bbox_mAP'] < 0.95
    assert once['base_bbox_mAP'] != once['novel_bbox_mAP']
    assert dict(once) == dict(mmdet)  # every key (in another order)


@pytest.mark.parametrize('world', ['toy', 'synthetic-coco'])
def test_faster_backend_equals_pycocotools(world, toy_root, synthetic_coco):
    """faster-coco-eval's numbers equal pycocotools' to the printed precision: every key,
    all classes, each split and each class (AP and AP50)."""
    pytest.importorskip('faster_coco_eval')
    if world == 'toy':
        ann = f'{toy_root}/annotations/instances_val.json'
        kwargs = dict(class_splits_file=f'{toy_root}/annotations/splits.json')
        classes, samples = toy_classes(), _noisy_predictions(json.load(open(ann)))
    else:
        ann, results = synthetic_coco
        kwargs = dict(class_splits={s: split_classes(f'coco-{s}') for s in ('base', 'novel')})
        classes = coco_classes()
    out = {}
    for backend in ('pycocotools', 'faster'):
        metric = InContextCocoMetric(ann_file=ann, metric=['bbox', 'segm'], classwise=True,
                                     backend=backend, **kwargs)
        metric.dataset_meta = dict(classes=classes)
        if world == 'toy':
            metric.process({}, samples)
            results = metric.results
        with contextlib.redirect_stdout(io.StringIO()):
            out[backend] = metric.compute_metrics(results)
    assert len({v for k, v in out['faster'].items() if '/' in k}) > 3  # classes differ
    assert 0.05 < out['faster']['segm_mAP'] < 0.95
    assert out['faster'] == out['pycocotools']


def test_unknown_or_missing_backend_is_a_clear_error(toy_root, monkeypatch):
    ann = f'{toy_root}/annotations/instances_val.json'
    with pytest.raises(ValueError, match="'pycocotools'"):
        InContextCocoMetric(ann_file=ann, backend='lvis')
    monkeypatch.setitem(sys.modules, 'faster_coco_eval', None)
    with pytest.raises(ImportError, match='pip install faster-coco-eval'):
        InContextCocoMetric(ann_file=ann, backend='faster')
    assert InContextCocoMetric(ann_file=ann).backend == 'pycocotools'  # auto: what is there


def test_result_files_written_when_asked_and_numbers_unchanged(toy_root, tmp_path):
    """The evaluation reads the detections from memory; outfile_prefix still writes mmdet's
    result files (the masks unpacked), and they hold every detection."""
    ann = f'{toy_root}/annotations/instances_val.json'
    samples = _noisy_predictions(json.load(open(ann)))
    out = []
    for prefix in (None, str(tmp_path / 'res')):
        metric = InContextCocoMetric(ann_file=ann, metric=['bbox', 'segm'],
                                     outfile_prefix=prefix)
        metric.dataset_meta = dict(classes=toy_classes())
        metric.process({}, samples)
        out.append(metric.evaluate(len(samples)))
    assert out[0] == out[1] and 0.05 < out[0]['coco/segm_mAP'] < 0.95
    n = sum(len(s['pred_instances']['scores']) for s in samples)
    for kind in ('bbox', 'segm'):
        dets = json.load(open(tmp_path / f'res.{kind}.json'))
        assert len(dets) == n and isinstance(dets[0]['bbox'], list)
    assert isinstance(dets[0]['segmentation']['counts'], str)
