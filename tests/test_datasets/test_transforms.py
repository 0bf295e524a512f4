import numpy as np
import pytest
import torch

from mmdet.datasets.transforms import Resize
from mmsamantics.datasets.transforms import (LoadImageChecked, LoadInContextReferences,
                                             PackInContextDetInputs)


def _refs(toy_root):
    import json
    coco = json.load(open(f'{toy_root}/annotations/instances_train.json'))
    refs = []
    for a in coco['annotations'][:3]:
        im = next(i for i in coco['images'] if i['id'] == a['image_id'])
        x, y, w, h = a['bbox']
        refs.append(dict(img_path=f'{toy_root}/train/{im["file_name"]}', bbox=[x, y, x + w, y + h],
                         label=a['category_id'] - 1, key=str(a['id']), size=(im['height'], im['width'])))
    return refs


def test_references_resized_like_targets(toy_root):
    refs = _refs(toy_root)
    out = LoadInContextReferences(scale=(256, 256)).transform(dict(references=refs))
    assert len(out['ref_imgs']) == 3 and out['ref_bboxes'].shape == (3, 4)
    for r, img, box in zip(refs, out['ref_imgs'], out['ref_bboxes']):
        # the same result as loading the reference as a target and resizing it
        t = LoadImageChecked().transform(dict(img_path=r['img_path']))
        t['gt_bboxes'] = None
        t = Resize(scale=(256, 256), keep_ratio=True).transform(
            dict(img=t['img'], img_shape=t['img_shape']))
        assert max(img.shape[:2]) == 256 and np.array_equal(img, t['img'])
        sx, sy = t['scale_factor']
        np.testing.assert_allclose(box, np.array(r['bbox']) * [sx, sy, sx, sy], rtol=1e-5)
    np.testing.assert_array_equal(out['ref_labels'], [r['label'] for r in refs])


def test_pack_carries_references(toy_root):
    refs = _refs(toy_root)
    res = LoadImageChecked().transform(dict(img_path=refs[0]['img_path'], img_id=1))
    res = Resize(scale=(256, 256), keep_ratio=True).transform(res)
    res['references'] = refs
    res = LoadInContextReferences(scale=(256, 256)).transform(res)
    packed = PackInContextDetInputs().transform(res)
    ds = packed['data_samples']
    assert len(ds.ref_inputs) == 3 and ds.ref_inputs[0].dtype == torch.uint8
    assert ds.ref_inputs[0].shape[0] == 3
    assert ds.metainfo['ref_keys'] == [r['key'] for r in refs]
    assert torch.equal(ds.ref_instances.labels, torch.tensor([r['label'] for r in refs]))


def test_missing_corrupt_images_and_bad_boxes(toy_root, tmp_path):
    with pytest.raises(FileNotFoundError, match='image not found.*nope.png'):
        LoadImageChecked().transform(dict(img_path=str(tmp_path / 'nope.png')))
    bad = tmp_path / 'corrupt.png'
    bad.write_bytes(b'\x89PNG\r\n\x1a\n this is not really a png')
    with pytest.raises(ValueError, match='corrupt.png.*cannot be decoded'):
        LoadImageChecked().transform(dict(img_path=str(bad)))
    refs = _refs(toy_root)
    refs[1]['bbox'] = [10, 10, 10, 30]
    with pytest.raises(ValueError, match='degenerate box'):
        LoadInContextReferences(scale=(256, 256)).transform(dict(references=refs))
    refs = _refs(toy_root)
    refs[0]['img_path'] = str(bad)
    with pytest.raises(ValueError, match='reference image .*corrupt.png'):
        LoadInContextReferences(scale=(256, 256)).transform(dict(references=refs))
