"""k-shot protocol: reference-set files in the dataset, reference banks, the seed summary."""
import copy
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

from mmdet.registry import DATASETS, MODELS
from helpers import toy_cfg
from mmsamantics.structures import cache_signature
from mmsamantics.apis import make_reference_bank
from mmsamantics.structures.reference_bank import load_reference_bank, save_reference_bank
from mmsamantics.datasets import select_reference_set
from mmsamantics.evaluation import apply_reference_options, summarize
from mmsamantics.utils import MissingResourceError


@pytest.fixture(scope='module')
def refs(toy_root, tmp_path_factory):
    out = tmp_path_factory.mktemp('refs')
    paths = {}
    for seed in (42, 123):
        doc = select_reference_set(osp.join(toy_root, 'annotations/instances_train.json'),
                                   seed, max_shots=3, min_area=256, border=4)
        doc['info']['source_ann_file'] = 'instances_train.json'
        paths[seed] = str(out / f'refs_seed{seed}.json')
        with open(paths[seed], 'w') as f:
            json.dump(doc, f)
    return paths


@pytest.fixture(scope='module')
def model(toy_root):
    torch.manual_seed(0)
    m = MODELS.build(toy_cfg(toy_root).model)
    m.init_weights()
    return m.eval()


def test_dataset_reads_kshot_prefix_of_reference_set(toy_root, refs):
    cfg = toy_cfg(toy_root)
    apply_reference_options(cfg, refs[42], shots=2, mode='open')
    ds = DATASETS.build(cfg.test_dataloader.dataset)
    with open(refs[42]) as f:
        doc = json.load(f)
    for label, chosen in ds.reference_set.items():
        name = ds.metainfo['classes'][label]
        cat = next(c['id'] for c in doc['categories'] if c['name'] == name)
        anns = sorted((a for a in doc['annotations'] if a['category_id'] == cat),
                      key=lambda a: a['shot'])[:2]
        assert [r['key'] for r in chosen] == [f'instances_train.json:{a["id"]}' for a in anns]
        assert all(r['img_path'].startswith(osp.join(toy_root, 'train')) for r in chosen)
    # the keys are those the training pool uses for the same annotations (one token space)
    train = DATASETS.build(toy_cfg(toy_root).train_dataloader.dataset)
    pool_keys = {r['key'] for rs in train.ref_pool.values() for r in rs}
    base = set(train.metainfo['classes'])
    some = [r['key'] for lb, rs in ds.reference_set.items()
            if ds.metainfo['classes'][lb] in base for r in rs]
    assert some and set(some) <= pool_keys
    # open mode queries every class of the set
    assert ds.sample_references(0, ds.get_data_info(0))[0]['key'] == ds.reference_set[0][0]['key']
    with pytest.raises(ValueError, match='ref_set_file fixes evaluation references'):
        DATASETS.build(dict(cfg.train_dataloader.dataset, ref_set_file=refs[42]))


def test_bank_gives_identical_predictions_without_reference_images(toy_root, refs, model,
                                                                  tmp_path):
    cfg = toy_cfg(toy_root)
    bank = str(tmp_path / 'bank.pth')
    meta = make_reference_bank(model, cfg, refs[42], 2, bank)
    b = load_reference_bank(bank)
    assert b['signature'] == cache_signature(model) and meta['shots'] == 2
    assert b['tokens'].shape[1:] == (4, 64) and len(b['keys']) == len(b['labels'])

    plain_cfg = toy_cfg(toy_root)
    apply_reference_options(plain_cfg, refs[42], shots=2, mode='oracle')
    bank_cfg = toy_cfg(toy_root)
    apply_reference_options(bank_cfg, refs[42], shots=2, ref_bank=bank, mode='oracle')
    plain = DATASETS.build(plain_cfg.test_dataloader.dataset)
    banked = DATASETS.build(bank_cfg.test_dataloader.dataset)
    a = model.data_preprocessor(pseudo_collate([plain[i] for i in range(3)]), False)
    d = model.data_preprocessor(pseudo_collate([banked[i] for i in range(3)]), False)
    assert all(ds.get('ref_inputs') is None for ds in d['data_samples'])  # no image read
    model.reference_store.reset()
    pa = model.predict(a['inputs'], a['data_samples'])
    with_bank = copy.copy(model)
    with_bank.reference_store = model.reference_store.spawn()
    with_bank.reference_bank = bank
    calls = []
    orig = model.backbone.forward
    model.backbone.forward = lambda x: calls.append(len(x)) or orig(x)
    try:
        pb = with_bank.predict(d['inputs'], d['data_samples'])
    finally:
        del model.backbone.forward
    assert calls == [3]  # SAM ran on the 3 targets only, never on a reference
    for x, y in zip(pa, pb):
        torch.testing.assert_close(y.pred_instances.bboxes, x.pred_instances.bboxes)
        torch.testing.assert_close(y.pred_instances.scores, x.pred_instances.scores)
        assert torch.equal(y.pred_instances.labels, x.pred_instances.labels)
        assert torch.equal(y.pred_instances.masks, x.pred_instances.masks)


def test_bank_of_the_dataset_draw_leaves_the_config_alone(toy_root, refs, model, tmp_path):
    """Without a reference-set file the bank holds the dataset's own seeded draw, whose
    first k are the draw of k shots; building banks never edits the caller's config."""
    cfg = toy_cfg(toy_root)
    before = cfg.pretty_text
    meta = make_reference_bank(model, cfg, None, 3, str(tmp_path / 'draw.pth'))
    make_reference_bank(model, cfg, refs[42], 2, str(tmp_path / 'file.pth'))
    assert cfg.pretty_text == before
    assert meta['ref_set_file'] is None and meta['seed'] == cfg.test_dataloader.dataset.ref_seed
    keys = set(load_reference_bank(str(tmp_path / 'draw.pth'))['keys'])
    for k in (1, 3):
        c = toy_cfg(toy_root)
        c.test_dataloader.dataset.shots = k
        ds = DATASETS.build(c.test_dataloader.dataset)
        assert {r['key'] for rs in ds.reference_set.values() for r in rs} <= keys


def test_bank_errors(toy_root, model, tmp_path):
    with pytest.raises(MissingResourceError, match='encode_references.py'):
        load_reference_bank(str(tmp_path / 'none.pth'))
    torch.save({'a': 1}, tmp_path / 'bad.pth')
    with pytest.raises(ValueError, match='not a reference bank'):
        load_reference_bank(str(tmp_path / 'bad.pth'))
    other = str(tmp_path / 'other.pth')
    save_reference_bank(other, ['k'], ['red circle'], torch.zeros(1, 4, 64), 'deadbeef')
    m = copy.copy(model)
    m.reference_store = model.reference_store.spawn()
    m.reference_bank = other
    with pytest.raises(ValueError, match='another SAM or preprocessing'):
        m.reference_store.bank()
    ok = str(tmp_path / 'ok.pth')
    save_reference_bank(ok, ['k'], ['red circle'], torch.zeros(1, 4, 64),
                        cache_signature(model))
    m.reference_bank = ok
    with pytest.raises(ValueError, match='no image and are not in the reference bank'):
        m._reference_tokens(None, torch.zeros(1, 4), ['missing-key'], rows=[-1])


def test_summary_is_mean_and_sample_std_over_seeds():
    recs = []
    vals = {42: (0.5, 0.2), 123: (0.3, 0.1), 33: (0.4, 0.6)}
    for seed, (base, novel) in vals.items():
        recs.append(dict(seed=seed, shots=1, mode='oracle', metrics={
            'coco/bbox_mAP': base, 'coco/base_bbox_mAP': base, 'coco/novel_bbox_mAP': novel}))
    recs.append(dict(seed=42, shots=5, mode='open', metrics={'coco/bbox_mAP': 0.9}))
    table, data = summarize(recs)
    row = data['oracle/1-shot']
    b = np.array([v[0] for v in vals.values()])
    n = np.array([v[1] for v in vals.values()])
    assert row['bbox_mAP'][:2] == pytest.approx([b.mean(), b.std(ddof=1)])
    assert row['novel_bbox_mAP'][:2] == pytest.approx([n.mean(), n.std(ddof=1)])
    assert row['bbox_mAP'][2] == 3 and data['open/5-shot']['bbox_mAP'] == [0.9, 0.0, 1]
    assert '| oracle | 1 | 33,42,123 |' in table and '0.400 ± 0.100' in table
