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


def test_reference_masks_decoded_resized_and_padded(toy_root):
    """with_mask: each reference's COCO polygon, at its resized image size, padded by the
    preprocessor like the images; a reference without segmentation falls back to its box."""
    import json

    import cv2
    from mmsamantics.models.data_preprocessors import InContextDataPreprocessor
    coco = json.load(open(f'{toy_root}/annotations/instances_train.json'))
    refs = _refs(toy_root)
    for r, a in zip(refs, coco['annotations'][:3]):
        r['segmentation'], r['img_hw'] = a['segmentation'], r['size']
    refs[2]['segmentation'] = None  # no mask: box fallback
    res = LoadImageChecked().transform(dict(img_path=refs[0]['img_path'], img_id=1))
    res = Resize(scale=(256, 256), keep_ratio=True).transform(res)
    res['references'] = refs
    res = LoadInContextReferences(scale=(256, 256), with_mask=True).transform(res)
    for r, a, img, m, box in zip(refs, coco['annotations'][:3], res['ref_imgs'],
                                 res['ref_masks'], res['ref_bboxes']):
        assert m.shape == img.shape[:2]
        if r['segmentation'] is None:
            x1, y1, x2, y2 = np.round(box).astype(int)
            assert m.sum() == (x2 - x1) * (y2 - y1) and m[y1:y2, x1:x2].all()
            continue
        # independent: rasterise the polygon at the original size with OpenCV, then resize
        full = np.zeros(r['size'], np.uint8)
        for poly in a['segmentation']:
            cv2.fillPoly(full, [np.round(np.array(poly).reshape(-1, 2)).astype(np.int32)], 1)
        ref = cv2.resize(full, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
        assert (m != ref).mean() < 0.02  # rasterisers differ on edge pixels only
    ds = PackInContextDetInputs().transform(res)['data_samples']
    pre = InContextDataPreprocessor(mean=[0.] * 3, std=[1.] * 3, pad_size_divisor=256)
    out = pre(dict(inputs=[torch.zeros(3, *res['img'].shape[:2], dtype=torch.uint8)],
                   data_samples=[ds]))['data_samples'][0]
    assert out.ref_masks.shape == (3, 256, 256) and out.ref_masks.dtype == torch.bool
    for m, padded in zip(res['ref_masks'], out.ref_masks):
        h, w = m.shape
        assert torch.equal(padded[:h, :w], torch.from_numpy(m).bool())
        assert not padded[h:].any() and not padded[:, w:].any()
