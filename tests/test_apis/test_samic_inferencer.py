"""InContextInferencer with SAMIC and PerSAM: the same predictions as their test pipelines."""
import numpy as np
import pytest
import torch
from mmengine.config import Config

from helpers import (REPO, assert_same_predictions, inferencer_vs_pipeline, persam_cfg,
                     train_refs, val_images)
from mmsamantics.apis import InContextInferencer


def samic_cfg(root: str) -> Config:
    cfg = Config.fromfile(f'{REPO}/configs/samic_toy.py')
    cfg.test_dataloader.dataset.data_root = root + '/'
    cfg.model.backbone.checkpoint = None
    cfg.model.mask_head.decoder.checkpoint = None
    # a random prompter: peaks wherever its heatmap exceeds the mean
    cfg.model.test_cfg.update(peak_thr=0.0, min_region_area=0)
    return cfg


def test_samic_inferencer_equals_model_predict(toy_root):
    torch.manual_seed(0)
    inf = InContextInferencer(samic_cfg(toy_root), None, device='cpu',
                              random_weights=True)
    # the detector's own pipeline without target annotations: reference heatmaps only
    steps = [dict(t) for t in inf.cfg.test_dataloader.dataset.pipeline
             if t['type'] != 'LoadAnnotations']
    for t in steps:
        if t['type'] == 'GenerateSaliencyHeatmaps':
            t['with_gt'] = False
    res, pred = inferencer_vs_pipeline(inf, val_images(toy_root)[0], train_refs(toy_root)[0],
                                       steps)
    assert_same_predictions(inf, res, pred)
    with pytest.raises(ValueError, match='outside'):  # a reference box outside its image
        inf.add_reference(np.zeros((32, 32, 3), np.uint8), 'x', box=[40, 40, 60, 60])


def test_persam_inferencer_equals_model_predict(toy_root):
    torch.manual_seed(0)
    inf = InContextInferencer(persam_cfg(toy_root), None, device='cpu')
    res, pred = inferencer_vs_pipeline(inf, val_images(toy_root)[0], train_refs(toy_root)[0])
    assert_same_predictions(inf, res, pred)


def test_samic_bank_is_the_detectors_bank_plus_heatmaps(toy_root, tmp_path):
    """The inference API's SAMIC bank holds the detector's own reference features (its
    signature, the ResNet maps of encode_references) and the heatmaps; it reloads to the
    same predictions; a bank of the detector alone (no heatmaps) is refused with the fix."""
    from mmsamantics.structures.reference_bank import load_reference_bank
    torch.manual_seed(0)
    inf = InContextInferencer(samic_cfg(toy_root), None, device='cpu',
                              random_weights=True)
    refs = train_refs(toy_root)[0]
    for i, (path, name, box, _, _) in enumerate(refs):
        inf.add_reference(path, name, box=box, key=f'r{i}')
    img = val_images(toy_root)[0]
    first = inf(img, score_thr=-1.0, max_dets=1000, show_progress=False)[0]
    bank = str(tmp_path / 'samic.pth')
    inf.save_bank(bank)
    raw = load_reference_bank(bank)
    assert raw['signature'] == inf.model.cache_signature and raw['meta']['kind'] == 'samic'
    keys, own = inf.model.encode_references(
        [dict(key=f'r{i}', img_path=p, bbox=b) for i, (p, _, b, _, _) in enumerate(refs)])
    assert raw['keys'] == keys and len(raw['tokens']) == len(own)
    for got, want in zip(raw['tokens'], own):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)
    s = int(inf.model.input_size)
    assert tuple(raw['meta']['heatmaps'].shape) == (len(refs), s, s)
    again = InContextInferencer(samic_cfg(toy_root), None, device='cpu',
                              random_weights=True)
    again.model.load_state_dict(inf.model.state_dict())
    again.load_bank(bank)
    res = again(img, score_thr=-1.0, max_dets=1000, show_progress=False)[0]
    np.testing.assert_allclose(res['scores'], first['scores'], atol=1e-5)
    plain = str(tmp_path / 'plain.pth')
    inf.model.save_bank(plain, keys, [r[1] for r in refs], own)
    with pytest.raises(ValueError, match='holds no heatmaps'):
        again.load_bank(plain)
