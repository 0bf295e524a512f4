"""Reference controls: shuffled (another class's references) and blank (constant images)."""
import numpy as np
import pytest
from mmengine.config import Config

from mmsamantics.datasets import InContextCocoDataset, toy_classes
from mmsamantics.datasets.transforms import LoadInContextReferences
from mmsamantics.evaluation import apply_reference_options, control_deltas, summarize


def build(root, mode='open', **kw):
    return InContextCocoDataset(
        data_root=root, ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'), mode=mode, ref_min_area=16 * 16,
        metainfo=dict(classes=toy_classes()), pipeline=[], test_mode=True,
        ref_ann_file='annotations/instances_train.json', ref_img_prefix='train/', shots=2,
        **kw)


def test_shuffled_gives_each_class_the_next_class_references(toy_root):
    normal, shuffled = build(toy_root), build(toy_root, ref_control='shuffled')
    labels = sorted(normal.reference_set)
    assert shuffled.derangement == {lb: labels[(i + 1) % len(labels)]
                                    for i, lb in enumerate(labels)}
    assert all(src != lb for lb, src in shuffled.derangement.items())  # a derangement
    info = normal.get_data_info(0)
    got = shuffled.sample_references(0, info)
    want = normal.sample_references(0, info)
    # the same queried classes, each answered with all the next class's references
    assert {r['label'] for r in got} == {r['label'] for r in want}
    for lb in {r['label'] for r in got}:
        assert sum(r['label'] == lb for r in got) == len(
            normal.reference_set[shuffled.derangement[lb]])
    for r in got:  # unchanged references (key, image) of the next class
        src = normal.reference_set[shuffled.derangement[r['label']]]
        assert r['key'] in {s['key'] for s in src}
        assert r['img_path'] in {s['img_path'] for s in src}


def test_blank_references_are_constant_images_with_their_own_keys(toy_root):
    ds = build(toy_root, mode='oracle', ref_control='blank')
    info = ds.get_data_info(0)
    refs = ds.sample_references(0, info)
    assert refs and all(r['blank'] and r['key'].endswith(':blank') for r in refs)
    out = LoadInContextReferences(scale=(256, 256), with_mask=True).transform(
        dict(references=refs))
    for img, r in zip(out['ref_imgs'], refs):
        assert (img == np.array([104, 116, 124], np.uint8)).all()
        h, w = r['img_hw']
        assert max(img.shape[:2]) == 256 and abs(img.shape[0] / img.shape[1] - h / w) < 0.02
    with pytest.raises(ValueError, match='never in a reference bank'):
        LoadInContextReferences(scale=(256, 256), load_images=False).transform(
            dict(references=refs))


def test_bad_controls(toy_root):
    with pytest.raises(ValueError, match='ref_control must be'):
        build(toy_root, ref_control='reversed')
    with pytest.raises(ValueError, match='evaluation control'):
        InContextCocoDataset(data_root=toy_root, ann_file='annotations/instances_train.json',
                             data_prefix=dict(img='train/'), mode='train', pipeline=[],
                             metainfo=dict(classes=toy_classes()), ref_control='shuffled')
    cfg = Config(dict(test_dataloader=dict(dataset=dict(pipeline=[])), model=dict()))
    with pytest.raises(ValueError, match='drop --ref-bank'):
        apply_reference_options(cfg, ref_bank='bank.pth', ref_control='blank')
    apply_reference_options(cfg, ref_control='shuffled')
    assert cfg.test_dataloader.dataset.ref_control == 'shuffled'


def test_control_deltas_against_the_normal_run():
    rec = [dict(mode='open', shots=1, seed=s, metrics={'coco/bbox_mAP_50': v})
           for s, v in ((42, 0.5), (123, 0.7))]
    rec += [dict(mode='open', shots=1, seed=s, ref_control='shuffled',
                 metrics={'coco/bbox_mAP_50': v}) for s, v in ((42, 0.2), (123, 0.2))]
    table, data = summarize(rec)
    assert 'open_shuffled' in table
    assert data['open_shuffled/1-shot']['bbox_mAP_50'][0] == pytest.approx(0.2)
    assert control_deltas(data) == {
        'open_shuffled/1-shot': {'bbox_mAP_50': pytest.approx(0.2 - 0.6)}}
