"""SAMIC reference banks (the frozen ResNet's reference features): encode_references equals
the detector's own features, a bank run (no reference image read) gives the detections of a
run from the images, and banks of another ResNet or another model are refused."""

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from helpers import REPO, using_bank
from mmsamantics.apis import build_dataset, build_model
from mmsamantics.structures.reference_bank import save_reference_bank

CONFIG = f'{REPO}/configs/samic_toy.py'


def samic_cfg(root: str) -> Config:
    cfg = Config.fromfile(CONFIG)
    cfg.merge_from_dict({'model.backbone.checkpoint': None,
                         'model.mask_head.decoder.checkpoint': None,
                         'test_dataloader.dataset.data_root': root.rstrip('/') + '/'})
    return cfg


def predict(model, cfg, n: int = 2):
    ds = build_dataset(cfg, 'test')
    batch = model.data_preprocessor(pseudo_collate([ds[i] for i in range(n)]), False)
    with torch.no_grad():
        return model.predict(batch['inputs'], batch['data_samples']), batch['data_samples']


@pytest.fixture(scope='module')
def setup(toy_root, tmp_path_factory):
    cfg = samic_cfg(toy_root)
    torch.manual_seed(0)
    model = build_model(cfg, None, 'cpu')
    ds = build_dataset(cfg, 'test')
    refs = [r for lb in sorted(ds.reference_set) for r in ds.reference_set[lb]]
    keys, feats = model.encode_references(refs, batch_size=2)
    bank = str(tmp_path_factory.mktemp('samic_bank') / 'bank.pth')
    save_reference_bank(bank, keys, [str(r['label']) for r in refs], feats,
                        model.cache_signature)
    return cfg, model, bank, keys, feats


def test_encoded_features_are_the_detectors(setup):
    cfg, model, _, keys, feats = setup
    assert len(feats) == len(model.prompter.feature_extractor.channels)
    model.reference_store.reset()
    _, samples = predict(model, cfg)
    ref_imgs, _, _, _, ref_keys = model._references(samples)
    own = model.prompter.extract_feats(ref_imgs)
    rows = [keys.index(k) for k in ref_keys]
    for f, g in zip(own, feats):
        # equal up to float rounding of the ResNet's batch composition (exact here)
        torch.testing.assert_close(f, g[rows], rtol=0, atol=1e-6)
    empty = model.encode_references([])[1]
    assert [e.shape[1:] for e in empty] == [f.shape[1:] for f in feats] and not len(empty[0])


def test_bank_run_equals_image_run(setup):
    cfg, model, bank, _, _ = setup
    model.reference_store.reset()
    plain, _ = predict(model, cfg)
    with using_bank(model, cfg, bank) as banked_cfg:
        banked, samples = predict(model, banked_cfg)
    assert all(s.get('ref_inputs', None) is None for s in samples)  # no image was read
    assert sum(len(d.pred_instances) for d in plain) > 0
    for a, b in zip(plain, banked):
        torch.testing.assert_close(a.pred_heatmaps, b.pred_heatmaps, rtol=0, atol=1e-6)
        p, q = a.pred_instances, b.pred_instances
        assert torch.equal(p.masks, q.masks) and torch.equal(p.labels, q.labels)
        torch.testing.assert_close(p.scores, q.scores, rtol=0, atol=1e-6)


def test_foreign_banks_are_refused(setup, tmp_path):
    cfg, model, _, keys, feats = setup
    other = str(tmp_path / 'matcher.pth')  # another kind: one tensor, its own signature
    save_reference_bank(other, keys, keys, torch.zeros(len(keys), 1, 8), 'f00dfeedf00dfeed')
    stale = str(tmp_path / 'stale.pth')  # this kind, another ResNet
    save_reference_bank(stale, keys, keys, feats, '0123456789abcdef')
    part = str(tmp_path / 'part.pth')  # this model, another reference set
    save_reference_bank(part, keys[:1], keys[:1], tuple(f[:1] for f in feats),
                        model.cache_signature)
    for path in (other, stale):
        with using_bank(model, cfg, path) as banked_cfg:
            with pytest.raises(ValueError, match='made with another ResNet weights'):
                predict(model, banked_cfg, 1)
    model.reference_store.reset()  # nothing cached from the runs above
    with pytest.raises(ValueError, match='neither in the reference bank None nor loaded as '
                                         'images'):
        predict(model, banked_cfg, 1)  # bank mode without a bank: no image to encode
    with using_bank(model, cfg, part) as banked_cfg:
        with pytest.raises(ValueError, match='neither in the reference bank'):
            predict(model, banked_cfg, 1)
        model.train()
        try:
            with pytest.raises(ValueError, match='serves evaluation only'):
                model._reference_feats(None, keys[:1])
        finally:
            model.eval()
