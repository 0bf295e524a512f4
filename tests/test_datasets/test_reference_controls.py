"""Reference controls: derangements (another class's references) and blank (constant images)."""
import logging

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.logging import MMLogger

from mmsamantics.datasets import InContextCocoDataset, toy_classes
from mmsamantics.datasets.reference_controls import (control_donors, control_group,
                                                     describe_control, expand_controls,
                                                     normalize_control)
from mmsamantics.datasets.transforms import LoadInContextReferences
from mmsamantics.evaluation import apply_reference_options, control_deltas, summarize


def build(root, mode='open', **kw):
    return InContextCocoDataset(
        data_root=root, ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'), mode=mode, ref_min_area=16 * 16,
        metainfo=dict(classes=toy_classes()), pipeline=[], test_mode=True,
        ref_ann_file='annotations/instances_train.json', ref_img_prefix='train/', shots=2,
        **kw)


@pytest.mark.parametrize('control', ['shuffled', 'cyclic', 'random-0', 'random-7',
                                     'same-attribute', 'same-kind'])
def test_each_class_gets_the_donor_class_references(toy_root, control):
    normal, ctrl = build(toy_root), build(toy_root, ref_control=control)
    labels = sorted(normal.reference_set)
    assert sorted(ctrl.donors) == labels
    assert all(src != lb for lb, src in ctrl.donors.items())  # a derangement
    assert sorted(ctrl.donors.values()) == labels  # a permutation
    info = normal.get_data_info(0)
    got = ctrl.sample_references(0, info)
    want = normal.sample_references(0, info)
    # the same queried classes, each answered with all the donor class's references
    assert {r['label'] for r in got} == {r['label'] for r in want}
    for lb in {r['label'] for r in got}:
        assert sum(r['label'] == lb for r in got) == len(
            normal.reference_set[ctrl.donors[lb]])
    for r in got:  # unchanged references (key, image) of the donor class
        src = normal.reference_set[ctrl.donors[r['label']]]
        assert r['key'] in {s['key'] for s in src}
        assert r['img_path'] in {s['img_path'] for s in src}


def test_the_derangements_of_the_family():
    names = toy_classes()  # 'red circle', 'red square', ... 3 colours x 4 shapes
    labels = list(range(len(names)))
    cyclic = control_donors('shuffled', labels, names)
    assert cyclic == {lb: (lb + 1) % 12 for lb in labels}
    assert control_donors('cyclic', labels, names) == cyclic
    attr = control_donors('same-attribute', labels, names)
    kind = control_donors('same-kind', labels, names)
    for lb in labels:
        colour, shape = names[lb].split(' ')
        assert names[attr[lb]].split(' ')[0] == colour
        assert names[attr[lb]].split(' ')[1] != shape
        assert names[kind[lb]].split(' ')[1] == shape
        assert names[kind[lb]].split(' ')[0] != colour
    assert attr[names.index('red circle')] == names.index('red square')  # the next of its group
    assert kind[names.index('red circle')] == names.index('green circle')
    randoms = [control_donors(f'random-{s}', labels, names) for s in range(4)]
    assert randoms[0] == control_donors('random-0', labels, names)  # seeded
    assert len({tuple(sorted(r.items())) for r in randoms}) == 4  # the seeds differ
    for r in randoms:
        assert sorted(r.values()) == labels and all(r[lb] != lb for lb in labels)
    # a subset of labels stays inside the subset
    assert control_donors('random-1', [2, 5, 9], names).keys() == {2, 5, 9}


def test_control_names_and_errors():
    assert normalize_control('shuffled') == 'cyclic'
    assert normalize_control('none') is None and normalize_control(None) is None
    assert expand_controls(['family'], [0, 1]) == [
        'cyclic', 'random-0', 'random-1', 'same-attribute', 'same-kind']
    assert expand_controls(['shuffled', 'random', 'blank'], [5]) == [
        'cyclic', 'random-5', 'blank']
    assert control_group('random-12') == 'random' and control_group('cyclic') == 'cyclic'
    assert 'cyclic' in describe_control('shuffled') and 'no reference control' in \
        describe_control('none')
    with pytest.raises(ValueError, match='ref_control must be'):
        normalize_control('random')
    with pytest.raises(ValueError, match='not named "<attribute> <kind>"'):
        control_donors('same-kind', [0, 1], ['person', 'car'])
    with pytest.raises(ValueError, match='no donor'):  # 'blue bus' has no other blue class
        control_donors('same-attribute', [0, 1, 2], ['red car', 'red bus', 'blue bus'])
    with pytest.raises(ValueError, match='at least 2 classes'):
        control_donors('cyclic', [3], toy_classes())
    with pytest.raises(ValueError, match='not a derangement'):
        control_donors('blank', [0, 1], toy_classes())


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_an_active_control_is_announced_and_named_in_the_metainfo(toy_root):
    logger, seen = MMLogger.get_current_instance(), Collect()
    logger.addHandler(seen)  # mmengine's logger does not propagate to pytest's caplog
    try:
        ds = build(toy_root, ref_control='same-kind')
        normal = build(toy_root, ref_control='none')
    finally:
        logger.removeHandler(seen)
    text = '\n'.join(seen.lines)
    assert '[control] same-kind' in text and 'red circle <- green circle' in text
    assert 'no reference control' in text
    assert ds.metainfo['reference_control'] == 'same-kind'
    assert normal.metainfo['reference_control'] == 'none' and normal.ref_control is None


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
    assert cfg.test_dataloader.dataset.ref_control == 'cyclic'
    apply_reference_options(cfg)  # no option: the config's control stays
    assert cfg.test_dataloader.dataset.ref_control == 'cyclic'
    apply_reference_options(cfg, ref_control='none')  # removes the config's control
    assert cfg.test_dataloader.dataset.ref_control is None


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
