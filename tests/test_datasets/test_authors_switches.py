"""The authors' training options behind switches: reference flip and class sampling order."""
import numpy as np
import pytest

from mmsamantics.datasets import InContextCocoDataset, toy_classes
from mmsamantics.datasets.transforms import LoadInContextReferences


def build(root, **kw):
    return InContextCocoDataset(
        data_root=root, ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'), mode='train', ref_min_area=16 * 16,
        metainfo=dict(classes=toy_classes()), pipeline=[], **kw)


def _refs(ds):
    return [ds.sample_references(i, ds.get_data_info(i)) for i in range(len(ds))]


def test_reference_flip_is_off_by_default_and_moves_no_other_draw(toy_root):
    plain = _refs(build(toy_root, ref_seed=3))
    assert not any('flip' in r for refs in plain for r in refs)
    always = _refs(build(toy_root, ref_seed=3, ref_flip_prob=1.0))
    for p, a in zip(plain, always):  # same references, each marked and re-keyed
        assert a == [dict(r, flip=True, key=r['key'] + ':flip') for r in p]
    half = [r for refs in _refs(build(toy_root, ref_seed=3, ref_flip_prob=0.5)) for r in refs]
    # fixed seed: 21 of the 56 references of the 32-image test world are flipped
    assert (sum(bool(r.get('flip')) for r in half), len(half)) == (21, 56)
    with pytest.raises(ValueError, match='ref_flip_prob must be in'):
        build(toy_root, ref_flip_prob=1.5)


def test_loader_mirrors_image_box_and_mask(toy_root):
    ds = build(toy_root, ref_seed=3)
    ref = ds.sample_references(0, ds.get_data_info(0))[0]
    load = LoadInContextReferences(scale=(256, 256), with_mask=True)
    a = load.transform(dict(references=[ref]))
    b = load.transform(dict(references=[dict(ref, flip=True, key=ref['key'] + ':flip')]))
    w = a['ref_imgs'][0].shape[1]
    np.testing.assert_array_equal(b['ref_imgs'][0], a['ref_imgs'][0][:, ::-1])
    np.testing.assert_array_equal(b['ref_masks'][0], a['ref_masks'][0][:, ::-1])
    x1, y1, x2, y2 = a['ref_bboxes'][0]
    np.testing.assert_allclose(b['ref_bboxes'][0], [w - x2, y1, w - x1, y2])
    with pytest.raises(ValueError, match='flipped references are never in a reference bank'):
        LoadInContextReferences(scale=(256, 256), load_images=False).transform(
            dict(references=[dict(ref, flip=True)]))


def test_authors_class_sampling_draws_before_dropping(toy_root):
    kw = dict(ref_seed=0, max_classes_per_image=1)
    ours, theirs = build(toy_root, **kw), build(toy_root, class_sampling='authors', **kw)
    for ds in (ours, theirs):  # the first class of the toy world has no reference
        ds.ref_pool.pop(0)
    lost = 0
    for i in range(len(ours)):
        info = ours.get_data_info(i)
        present = {inst['bbox_label'] for inst in info['instances']}
        a, b = ours.sample_references(i, info), theirs.sample_references(i, info)
        assert all(r['label'] != 0 for r in a + b)
        assert len(a) == (1 if present - {0} else 0)
        lost += len(b) < len(a)  # the draw fell on class 0, which is then dropped
    assert lost == 4  # of 32 targets, at this seed
    with pytest.raises(ValueError, match='class_sampling one of'):
        build(toy_root, class_sampling='random')
