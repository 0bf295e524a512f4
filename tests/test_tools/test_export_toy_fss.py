"""tools/misc/export_toy_fss.py writes the toy world in the PASCAL-5i, COCO-20i and FSS-1000
layouts; SAMIC then evaluates fixed PASCAL-5i episodes through tools/test.py."""
import json
import os
import os.path as osp
import re

import numpy as np
import pytest
from PIL import Image

from helpers import PY, REPO, load_tool, run_tool, step_options
from mmsamantics.utils.images import decode_coco_mask
from mmsamantics_toy.toy_world import make_toy_world

CONFIG = osp.join(REPO, 'configs', 'samic', 'samic_hsnet-r50_sam-tiny_1xb4-30e_toy-pascal-5i.py')


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp('export')
    make_toy_world(str(root / 'world'), seed=0, num_train=8, num_val=32)
    load_tool('tools/misc/export_toy_fss.py').main([str(root / 'world'), str(root / 'out'),
                                                   '--per-class', '3'])
    return str(root / 'world'), str(root / 'out')


def test_layouts_hold_the_toy_world(exported):
    world, out = exported
    doc = json.load(open(osp.join(world, 'annotations', 'instances_val.json')))
    voc = osp.join(out, 'pascal5i', 'VOC2012')
    stems = open(osp.join(voc, 'ImageSets', 'Segmentation', 'val.txt')).read().split()
    assert stems == [f'val_{osp.splitext(im["file_name"])[0]}' for im in doc['images']]
    for im, stem in zip(doc['images'][:4], stems):
        png = np.asarray(Image.open(osp.join(voc, 'SegmentationClassAug', stem + '.png')))
        assert osp.isfile(osp.join(voc, 'JPEGImages', stem + '.jpg'))
        assert set(np.unique(png)) <= set(range(13)) | {255} and (png == 255).any()
        for a in (a for a in doc['annotations'] if a['image_id'] == im['id']):
            m = decode_coco_mask(a['segmentation'], im['height'], im['width']) > 0
            assert not (m & (png == 0)).any()  # an object pixel is never background
    coco = json.load(open(osp.join(out, 'coco20i', 'annotations', 'instances_val2014.json')))
    assert coco['annotations'] == doc['annotations']
    assert all(osp.isfile(osp.join(out, 'coco20i', 'val2014', im['file_name']))
               for im in coco['images'])
    # FSS-1000: at most 3 pairs per class, each png the class mask of its image
    folders = sorted(os.listdir(osp.join(out, 'fss1000')))
    assert len(folders) == 13 and 'splits' in folders  # 12 classes + splits/
    first = sorted(os.listdir(osp.join(out, 'fss1000', 'red_circle')))
    assert first[:2] == ['1.jpg', '1.png'] and len(first) <= 6
    # 1.png: the class mask of the first image holding the class, train split first
    png = np.asarray(Image.open(osp.join(out, 'fss1000', 'red_circle', '1.png')))
    np.testing.assert_array_equal(png > 127, first_class_mask(world, 'red circle'))


def first_class_mask(world: str, cls: str) -> np.ndarray:
    for split in ('train', 'val'):
        d = json.load(open(osp.join(world, 'annotations', f'instances_{split}.json')))
        cat = next(c['id'] for c in d['categories'] if c['name'] == cls)
        for im in d['images']:
            anns = [a for a in d['annotations']
                    if a['image_id'] == im['id'] and a['category_id'] == cat]
            if anns:
                return np.any([decode_coco_mask(a['segmentation'], im['height'], im['width'])
                               for a in anns], 0) > 0
    raise AssertionError(f'no {cls} in the toy world')


@pytest.mark.e2e
def test_samic_evaluates_pascal5i_episodes(exported, tmp_path):
    _, out = exported
    metrics_file = str(tmp_path / 'metrics.json')
    opts = {'test_dataloader.dataset.data_root': osp.join(out, 'pascal5i', 'VOC2012') + '/',
            'test_dataloader.dataset.num_episodes': 12,  # the config's 1,000, shortened
            'model.backbone.checkpoint': None, 'model.mask_head.decoder.checkpoint': None,
            'model.prompter.input_size': 64,
            **step_options(CONFIG, 'test_dataloader', 'GenerateSaliencyHeatmaps', size=64)}
    rc, log = run_tool([PY, 'tools/test.py', CONFIG, '--work-dir', str(tmp_path / 'wd'),
                        '--metrics-out', metrics_file, '--cfg-options',
                        *[f'{k}={v}' for k, v in opts.items()]])
    assert rc == 0, log[-3000:]
    line = [ln for ln in log.splitlines() if 'Epoch(test)' in ln][-1]
    assert 'fss/mIoU' in line and 'fss/FB-IoU' in line
    m = re.search(r'episodes: 12, classes: (\d) \(IoU (.*)\)', log)
    assert m, log[-3000:]
    per_class = [float(v) for v in re.findall(r': ([\d.]+)', m.group(2))]
    metrics = json.load(open(metrics_file))
    # the fold's classes (red circle / square / triangle) each scored; mIoU is their mean
    assert re.findall(r'(red \w+):', m.group(2)) == ['red circle', 'red square',
                                                      'red triangle'][:int(m.group(1))]
    assert metrics['fss/mIoU'] == pytest.approx(np.mean(per_class), abs=1e-3)
