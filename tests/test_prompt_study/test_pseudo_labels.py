"""WSSS pseudo-labels: GT-box path numerically, the detector path, the mIoU tool."""
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from helpers import REPO, load_tool, val_paths
from mmsamantics.wsss import (GTBoxSource, coco_classes, evaluate_label_dirs,
                              generate_pseudo_labels, load_label_png, write_gt_labels)

PSEUDO = osp.join(REPO, 'tools', 'misc', 'sam_pseudo_labels.py')
EVAL = osp.join(REPO, 'tools', 'analysis', 'eval_pseudo_labels.py')

TINY_RETINANET = """
model = dict(
    type='RetinaNet',
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32),
    backbone=dict(type='ResNet', depth=18, base_channels=8, out_indices=(1, 2, 3),
                  norm_cfg=dict(type='BN', requires_grad=False), norm_eval=True),
    neck=dict(type='FPN', in_channels=[16, 32, 64], out_channels=16, num_outs=3),
    bbox_head=dict(type='RetinaHead', num_classes=3, in_channels=16, stacked_convs=1,
                   feat_channels=16,
                   anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
                                         scales_per_octave=1, ratios=[1.0], strides=[8, 16, 32]),
                   bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                                   target_stds=[1.0, 1.0, 1.0, 1.0])),
    test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.0,
                  nms=dict(type='nms', iou_threshold=0.5), max_per_img=5))
test_dataloader = dict(dataset=dict(type='CocoDataset', pipeline=[
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                          'scale_factor'))]))
"""


class GTMaskSegmenter:
    """A perfect 'SAM': the GT mask of the instance whose box is prompted."""

    def __init__(self, coco):
        self.by_box = {tuple(np.round(a['bbox'], 3)): coco.annToMask(a).astype(bool)
                       for a in coco.dataset['annotations']}

    def __call__(self, img, boxes):
        xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)
        return (np.stack([self.by_box[tuple(np.round(b, 3))] for b in xywh]),
                np.ones(len(boxes)))


def test_gt_boxes_with_perfect_masks_reproduce_the_gt_maps(toy_root, tmp_path):
    ann, img_dir = val_paths(toy_root)
    coco = COCO(ann)
    cat_to_label, names = coco_classes(coco)
    stats = generate_pseudo_labels(coco, img_dir, GTBoxSource(coco, cat_to_label),
                                   GTMaskSegmenter(coco), str(tmp_path / 'pred'), rule='area')
    write_gt_labels(coco, str(tmp_path / 'gt'))
    assert stats['images'] == 8 and stats['boxes'] == len(coco.dataset['annotations'])
    for info in coco.imgs.values():
        name = osp.splitext(info['file_name'])[0] + '.png'
        pred = load_label_png(str(tmp_path / 'pred' / name))
        gt = load_label_png(str(tmp_path / 'gt' / name))
        np.testing.assert_array_equal(pred, gt)
        # the GT map is the instance masks painted with their class's label value
        for a in coco.imgToAnns[info['id']]:
            assert (gt[coco.annToMask(a).astype(bool)] == cat_to_label[a['category_id']]).all()
    s = evaluate_label_dirs(str(tmp_path / 'pred'), str(tmp_path / 'gt'))
    assert s['miou'] == pytest.approx(1.0) and s['per_class'][0]['name'] == 'background'
    assert [r['name'] for r in s['per_class']] == names


def _direct_miou(pred_dir, gt_dir, k):
    inter, union = np.zeros(k), np.zeros(k)
    for f in sorted(os.listdir(gt_dir)):
        if not f.endswith('.png'):
            continue
        g, p = load_label_png(osp.join(gt_dir, f)), load_label_png(osp.join(pred_dir, f))
        p, g = p[g != 255], g[g != 255]
        for c in range(k):
            inter[c] += ((p == c) & (g == c)).sum()
            union[c] += ((p == c) | (g == c)).sum()
    return np.mean(inter[union > 0] / union[union > 0])


@pytest.mark.e2e
def test_pseudo_label_and_eval_tools_end_to_end(toy_root, tmp_path, capsys):
    ann, img_dir = val_paths(toy_root)
    pred, gt = tmp_path / 'pred', tmp_path / 'gt'
    load_tool(PSEUDO).main(['--ann-file', ann, '--img-dir', img_dir, '--boxes', 'gt',
                            '--sam-preset', 'tiny', '--out-dir', str(pred),
                            '--gt-out-dir', str(gt)])
    assert len([f for f in os.listdir(pred) if f.endswith('.png')]) == 8
    assert json.loads((pred / 'classes.json').read_text())['classes'][0] == 'background'
    load_tool(EVAL).main([str(pred), str(gt), '--out-dir', str(tmp_path / 'eval')])
    s = json.loads((tmp_path / 'eval' / 'pseudo_label_miou.json').read_text())
    assert s['miou'] == pytest.approx(_direct_miou(str(pred), str(gt), 13))
    assert (tmp_path / 'eval' / 'pseudo_label_miou.md').read_text().count('\n|') >= 13
    assert (tmp_path / 'eval' / 'pseudo_label_miou.png').stat().st_size > 0
    assert 'mIoU' in capsys.readouterr().out


@pytest.mark.e2e
def test_eval_tool_errors(toy_root, tmp_path):
    ann, _ = val_paths(toy_root)
    coco = COCO(ann)
    write_gt_labels(coco, str(tmp_path / 'gt'), max_images=3)
    shutil.copytree(tmp_path / 'gt', tmp_path / 'pred')
    os.remove(tmp_path / 'pred' / sorted(os.listdir(tmp_path / 'gt'))[0])
    main = load_tool(EVAL).main
    with pytest.raises(SystemExit, match='no pseudo-label for .*allow-missing'):
        main([str(tmp_path / 'pred'), str(tmp_path / 'gt')])
    # a missing prediction counted as all background: its class pixels become misses
    s = evaluate_label_dirs(str(tmp_path / 'pred'), str(tmp_path / 'gt'), allow_missing=True)
    assert len(s['missing']) == 1 and s['miou'] < 1.0
    classes = json.loads((tmp_path / 'pred' / 'classes.json').read_text())
    classes['classes'][1] = 'pink hexagon'
    (tmp_path / 'pred' / 'classes.json').write_text(json.dumps(classes))
    with pytest.raises(SystemExit, match='other classes than the GT'):
        main([str(tmp_path / 'pred'), str(tmp_path / 'gt'), '--allow-missing'])
    with pytest.raises(SystemExit, match='pseudo-label folder not found'):
        main([str(tmp_path / 'none'), str(tmp_path / 'gt')])


@pytest.fixture(scope='module')
def tiny_detector(tmp_path_factory):
    """A random-weight RetinaNet whose classes are 2 toy classes and one unknown name."""
    from mmengine.config import Config
    from mmengine.runner import save_checkpoint

    from mmdet.registry import MODELS
    d = tmp_path_factory.mktemp('det')
    (d / 'retina.py').write_text(TINY_RETINANET)
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(str(d / 'retina.py')).model)
    meta = dict(dataset_meta=dict(classes=('red circle', 'blue star', 'dog')))
    save_checkpoint(dict(state_dict=model.state_dict(), meta=meta), str(d / 'retina.pth'))
    return str(d / 'retina.py'), str(d / 'retina.pth')


@pytest.mark.e2e
def test_detector_boxes(toy_root, tmp_path, tiny_detector, capsys):
    ann, img_dir = val_paths(toy_root)
    cfg, ckpt = tiny_detector
    main = load_tool(PSEUDO).main
    args = ['--ann-file', ann, '--img-dir', img_dir, '--boxes', 'detector', '--det-config', cfg,
            '--det-checkpoint', ckpt, '--score-thr', '0', '--max-images', '3',
            '--sam-preset', 'tiny', '--out-dir', str(tmp_path / 'det')]
    with pytest.raises(SystemExit, match=r"detector classes \['dog'\] are not dataset"):
        main(args)
    main(args + ['--class-map', 'dog=green star'])
    # score_thr 0 and max_per_img 5: every image gets 5 boxes, all prompted
    assert '3 pseudo-label PNGs (15 detector boxes, 0 images without a box)' in \
        capsys.readouterr().out
    pngs = sorted(f for f in os.listdir(tmp_path / 'det') if f.endswith('.png'))
    assert len(pngs) == 3
    allowed = {0, 1, 8, 12}  # background, red circle, green star, blue star
    for f in pngs:
        assert set(np.unique(load_label_png(str(tmp_path / 'det' / f)))) <= allowed
    with pytest.raises(SystemExit, match='needs --det-config and --det-checkpoint'):
        main(args[:4] + ['--boxes', 'detector'])
    with pytest.raises(SystemExit, match='detector checkpoint not found'):
        main([a if a != ckpt else ckpt + '.missing' for a in args])
