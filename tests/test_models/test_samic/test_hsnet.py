"""SAMIC's HSNet prompter: frozen pre-ReLU ResNet features, correlations, pyramid, size."""
import numpy as np
import pytest
import torch

from mmsamantics.models.samic import (HSNetLearner, HSNetPrompter, SAMICResNetFeatures,
                                      cosine_correlation, hypercorrelation_pyramid)
from mmsamantics.utils import MissingResourceError

# HSNet with 3 4D layers per block (SAMIC Table 5, paper: "2.6M")
PAPER_CONFIG_PARAMS = 2_573_794


def test_learner_parameter_count_matches_the_paper():
    n = sum(p.numel() for p in HSNetLearner().parameters() if p.requires_grad)
    print(f'HSNet learner trainable parameters: {n:,}')
    assert n == PAPER_CONFIG_PARAMS
    assert abs(n - 2.6e6) / 2.6e6 < 0.02


@pytest.fixture(scope='module')
def resnet18():
    torch.manual_seed(0)
    return SAMICResNetFeatures(depth=18)


def test_features_are_pre_relu_block_outputs(resnet18):
    x = torch.randn(1, 3, 64, 64)
    feats = resnet18(x)
    assert resnet18.num_per_stage == (2, 2, 2) and len(feats) == 6
    assert [f.shape[-1] for f in feats] == [8, 8, 4, 4, 2, 2]
    assert (torch.cat([f.flatten() for f in feats]) < 0).any()  # before the ReLU
    r = resnet18.resnet
    r.out_indices = (1, 2, 3)
    try:
        ref = r(x)  # mmdet's forward: ReLU'd stage outputs
    finally:
        r.out_indices = (3,)
    for i, j in zip((1, 3, 5), range(3)):
        torch.testing.assert_close(torch.relu(feats[i]), ref[j])


def test_extractor_is_frozen_and_stays_in_eval(resnet18):
    assert not any(p.requires_grad for p in resnet18.parameters())
    resnet18.train()
    assert not any(m.training for m in resnet18.modules())
    before = {k: v.clone() for k, v in resnet18.state_dict().items()}
    resnet18.init_weights()  # the runner's init must not re-initialise it
    assert all(torch.equal(before[k], v) for k, v in resnet18.state_dict().items())


def test_checkpoint_loading(tmp_path, resnet18):
    state = dict(resnet18.resnet.state_dict())
    state['fc.weight'] = torch.zeros(10, 512)  # torchvision/timm heads are ignored
    path = str(tmp_path / 'r18.pth')
    torch.save(state, path)
    loaded = SAMICResNetFeatures(depth=18, checkpoint=path)
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(loaded(x)[-1], resnet18(x)[-1])
    with pytest.raises(MissingResourceError, match='ImageNet ResNet'):
        SAMICResNetFeatures(depth=18, checkpoint=str(tmp_path / 'missing.pth'))
    torch.save({'layer9.w': torch.zeros(1)}, path)
    with pytest.raises(RuntimeError, match='does not match'):
        SAMICResNetFeatures(depth=18, checkpoint=path)


def test_cosine_correlation_against_numpy():
    t, r = torch.randn(2, 5, 3, 4), torch.randn(2, 5, 2, 3)
    r[:, :, 0, 0] = 0  # masked out: correlation 0
    c = cosine_correlation(t, r).numpy()
    tn, rn = t.numpy(), r.numpy()
    for p in range(2):
        for a in np.ndindex(3, 4):
            for b in np.ndindex(2, 3):
                u, v = tn[p, :, a[0], a[1]], rn[p, :, b[0], b[1]]
                nv = np.linalg.norm(v)
                cos = u @ v / (np.linalg.norm(u) * nv) if nv > 0 else 0.0
                # 1e-4: the norms get an eps of 1e-5
                assert c[p, a[0], a[1], b[0], b[1]] == pytest.approx(max(cos, 0), abs=1e-4)


def test_pyramid_shapes_resnet50_and_prompter_output():
    torch.manual_seed(0)
    prompter = HSNetPrompter(dict(type='SAMICResNetFeatures', depth=50),
                             dict(type='HSNetLearner'), input_size=64)
    imgs = torch.randn(2, 3, 64, 64)
    ft = prompter.extract_feats(imgs)
    fr = prompter.extract_feats(imgs.flip(0))
    pyr = hypercorrelation_pyramid(ft, fr, prompter.feature_extractor.stage_ids)
    assert [tuple(c.shape) for c in pyr] == [(2, 4, 8, 8, 8, 8), (2, 6, 4, 4, 4, 4),
                                             (2, 3, 2, 2, 2, 2)]
    heat = torch.zeros(2, 1, 64, 64)
    heat[:, :, 20:30, 20:30] = 1
    out = prompter(ft, fr, heat, (64, 64))
    assert out.shape == (2, 1, 64, 64) and (out >= 0).all() and (out <= 1).all()
    out.sum().backward()
    grads = [p.grad for p in prompter.learner.parameters()]
    assert all(g is not None for g in grads)
    assert all(p.grad is None for p in prompter.feature_extractor.parameters())
    with pytest.raises(ValueError, match='in_channels'):
        HSNetPrompter(dict(type='SAMICResNetFeatures', depth=18),
                      dict(type='HSNetLearner', in_channels=(4, 6, 3)))
