"""SAMIC loss terms (eqs. 1-3) against direct numpy computations of the paper's formulas."""
import numpy as np
import pytest
import torch

from mmsamantics.models.samic import SAMICSaliencyLoss, cc_loss, kld_loss, nss_loss

EPS = 1e-6


def maps(seed=0):
    rng = np.random.default_rng(seed)
    gt = np.zeros((3, 1, 12, 10))
    gt[0, 0, 3:6, 2:5] = rng.random((3, 3)) * 0.5 + 0.5
    gt[1, 0, 7:10, 5:9] = 1.0
    gt[2] = rng.random((1, 12, 10))
    pred = rng.random((3, 1, 12, 10))
    return pred, gt


@pytest.mark.parametrize('normalize', [True, False])
def test_kld(normalize):
    pred, gt = maps()
    for p, g, v in zip(pred, gt, kld_loss(torch.tensor(pred), torch.tensor(gt),
                                          normalize=normalize)):
        if normalize:
            p, g = p / (p.sum() + EPS), g / (g.sum() + EPS)
        expect = sum(gi * np.log(EPS + gi / (pi + EPS)) for gi, pi in zip(g.ravel(), p.ravel()))
        assert float(v) == pytest.approx(expect, rel=1e-9)


def test_cc():
    pred, gt = maps()
    for p, g, v in zip(pred, gt, cc_loss(torch.tensor(pred), torch.tensor(gt))):
        cc = np.corrcoef(p.ravel(), g.ravel())[0, 1]  # numpy's Pearson correlation
        assert float(v) == pytest.approx(1 - cc, abs=1e-9)
    assert float(cc_loss(torch.tensor(gt), torch.tensor(gt))[0]) == pytest.approx(0, abs=1e-9)


def test_nss():
    pred, gt = maps()
    for p, g, v in zip(pred, gt, nss_loss(torch.tensor(pred), torch.tensor(gt))):
        p, g = p.ravel(), g.ravel()
        fix = g > 0.5
        pbar = (p - p.mean()) / p.std()
        rbar = (g - g.mean()) / g.std()
        expect = np.sum((rbar - pbar)[fix]) / fix.sum()
        assert float(v) == pytest.approx(expect, rel=1e-9)


def test_loss_module_sums_the_terms_and_handles_empty_ground_truth():
    pred, gt = maps()
    gt[2] = 0  # a class absent from the target
    loss = SAMICSaliencyLoss()(torch.tensor(pred), torch.tensor(gt))
    p, g = torch.tensor(pred[:2]), torch.tensor(gt[:2])
    assert float(loss['loss_kld']) == pytest.approx(float(kld_loss(p, g).mean()))
    assert float(loss['loss_cc']) == pytest.approx(float(cc_loss(p, g).mean()))
    assert float(loss['loss_nss']) == pytest.approx(float(nss_loss(p, g).mean()))
    assert float(loss['loss_empty']) == pytest.approx(pred[2].mean() / 3)
    # a perfect prediction has no CC loss and no NSS loss
    perfect = SAMICSaliencyLoss()(torch.tensor(gt[:2]), torch.tensor(gt[:2]))
    assert float(perfect["loss_cc"]) == pytest.approx(0, abs=1e-9)
    assert float(perfect["loss_nss"]) == pytest.approx(0, abs=1e-9)
    assert 'loss_empty' not in perfect
    with pytest.raises(ValueError, match='same shape'):
        SAMICSaliencyLoss()(torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 5, 5))
