"""SAM 3 reference banks (exemplar crops): a bank run equals a run from the reference images,
and banks of another model or other crop settings are refused."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from helpers import REPO, using_bank
from mmsamantics.apis import build_dataset, build_model
from mmsamantics.models.sam3 import write_tiny_bpe
from mmsamantics.structures.reference_bank import save_reference_bank

CONFIG = osp.join(REPO, 'configs', 'sam3_toy.py')


def cfg_for(root: str, bpe: str, **extra) -> Config:
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict({'test_dataloader.dataset.data_root': root.rstrip('/') + '/',
                         'model.bpe_path': bpe, 'test_dataloader.dataset.shots': 2, **extra})
    return cfg


def predict(model, cfg, n: int = 3):
    ds = build_dataset(cfg, 'test')
    batch = model.data_preprocessor(pseudo_collate([ds[i] for i in range(n)]), False)
    return model.predict(batch['inputs'], batch['data_samples']), batch['data_samples']


@pytest.fixture(scope='module')
def setup(toy_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp('sam3_bank')
    bpe = write_tiny_bpe(str(tmp / 'bpe.txt.gz'))
    cfg = cfg_for(toy_root, bpe)
    torch.manual_seed(0)
    model = build_model(cfg, None, 'cpu')
    ds = build_dataset(cfg, 'test')
    refs = [r for lb in sorted(ds.reference_set) for r in ds.reference_set[lb]]
    keys, (pixels, geometry) = model.encode_references(refs, batch_size=2)
    bank = str(tmp / 'bank.pth')
    save_reference_bank(bank, keys, [str(r['label']) for r in refs], (pixels, geometry),
                        model.cache_signature)
    return cfg, model, bank, tmp


def test_bank_run_equals_image_run(setup):
    cfg, model, bank, _ = setup
    plain, samples = predict(model, cfg)
    assert all(s.get('ref_inputs', None) is not None for s in samples)
    with using_bank(model, cfg, bank) as banked_cfg:
        banked, samples = predict(model, banked_cfg)
    assert all(s.get('ref_inputs', None) is None for s in samples)  # no image was read
    for a, b in zip(plain, banked):
        p, q = a.pred_instances, b.pred_instances
        assert len(p) > 0
        for field in ('bboxes', 'scores', 'labels', 'masks'):
            assert torch.equal(p[field], q[field]), field


def test_crops_are_uint8_with_their_box(setup):
    _, model, bank, _ = setup
    raw = torch.load(bank, weights_only=True)
    pixels, geometry = raw['tokens']
    assert pixels.dtype == torch.uint8 and pixels.shape[:2] == (len(raw['keys']), 3)
    h, w = geometry[:, 0], geometry[:, 1]
    assert (h <= pixels.shape[2]).all() and (w <= pixels.shape[3]).all()
    box = geometry[:, 2:]
    assert (box[:, :2] >= 0).all() and (box[:, 2] <= w).all() and (box[:, 3] <= h).all()
    # a crop is its box grown by context (0.25) on every side, unless clipped by its image
    assert ((box[:, 2] - box[:, 0]) < w).any()
    keys, (none, geometry) = model.encode_references([])
    assert keys == [] and none.dtype == torch.uint8 and geometry.shape == (0, 6)


def test_foreign_banks_are_refused(setup):
    cfg, model, bank, tmp = setup
    other = str(tmp / 'insam.pth')  # another model kind: a tensor of tokens, its signature
    save_reference_bank(other, ['a'], ['x'], torch.zeros(1, 4, 8), 'f00dfeedf00dfeed')
    samples = predict(model, cfg, 1)[1]
    for s in samples:
        s.ref_inputs = None
    for path in (other, bank):
        model.reference_bank = path
        model.test_cfg['context'] = 0.25 if path == other else 0.5  # crops of another size
        try:
            with pytest.raises(ValueError, match='made with another exemplar-crop settings'):
                model.predict(torch.zeros(1, 3, 112, 112), samples)
        finally:
            model.reference_bank, model.test_cfg['context'] = None, 0.25
    model.reference_bank = str(tmp / 'missing.pth')
    try:
        with pytest.raises(FileNotFoundError, match='encode_references.py'):
            model.predict(torch.zeros(1, 3, 112, 112), samples)
    finally:
        model.reference_bank = None


def test_missing_reference_is_named(setup):
    cfg, model, bank, tmp = setup
    samples = predict(model, cfg, 1)[1]
    samples[0].ref_inputs = None
    samples[0].set_metainfo(dict(ref_keys=['not-in-bank'] * len(samples[0].ref_instances)))
    model.reference_bank = bank
    try:
        with pytest.raises(ValueError, match="'not-in-bank' is neither in the reference bank"):
            model.predict(torch.zeros(1, 3, 112, 112), samples)
    finally:
        model.reference_bank = None
