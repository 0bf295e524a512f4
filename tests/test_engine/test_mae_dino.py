"""The MAE and DINO objectives of the toy encoders' pretraining."""
import copy

import pytest
import torch
import torch.nn.functional as F

from mmsamantics.engine.pretraining import (DINOLoss, MaskedImageModel, MultiCrop,
                                            cosine_momentum, ema_update, patchify,
                                            random_patch_mask)
from mmsamantics.engine.pretraining.toy_dinov2 import DINOStudent, build_tiny_vit
from mmsamantics.models import SAMImageEncoder


def test_mask_hides_exactly_the_ratio_and_is_seeded():
    a = random_patch_mask(4, 256, 0.75, torch.Generator().manual_seed(0))
    b = random_patch_mask(4, 256, 0.75, torch.Generator().manual_seed(0))
    assert a.sum(1).tolist() == [192] * 4 and torch.equal(a, b)
    assert not torch.equal(a[0], a[1])  # per-image draws
    with pytest.raises(ValueError, match='mask_ratio'):
        random_patch_mask(1, 16, 1.0)


def test_patchify_matches_a_loop():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float).reshape(2, 3, 8, 8)
    p = patchify(x, 4)
    assert p.shape == (2, 4, 48)
    # patch (row 1, col 0) of image 1, pixel (y=2, x=3), channel 2
    assert p[1, 2, (2 * 4 + 3) * 3 + 2] == x[1, 2, 4 + 2, 0 + 3]


def test_mae_loss_is_norm_pix_mse_on_hidden_patches():
    model = MaskedImageModel(SAMImageEncoder(preset='tiny', frozen=False).encoder)
    imgs = torch.randn(1, 3, 256, 256)
    mask = torch.zeros(1, 256, dtype=torch.bool)
    mask[0, [3, 10]] = True
    pred = torch.randn(1, 256, 768)
    t = patchify(imgs, 16)
    t = (t - t.mean(-1, keepdim=True)) / (t.var(-1, keepdim=True) + 1e-6).sqrt()
    expected = ((pred[0, [3, 10]] - t[0, [3, 10]]) ** 2).mean()
    assert torch.allclose(model.loss(pred, imgs, mask), expected, atol=1e-6)


def test_mae_loss_decreases_on_a_fixed_batch():
    torch.manual_seed(0)
    model = MaskedImageModel(SAMImageEncoder(preset='tiny', frozen=False).encoder)
    imgs = torch.randn(2, 3, 256, 256)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(8):
        loss = model(imgs, torch.Generator().manual_seed(0))  # same mask every step
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


def test_ema_update_is_the_formula():
    s, t = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    t0 = copy.deepcopy(t)
    ema_update(t, s, 0.9)
    assert torch.allclose(t.weight, 0.9 * t0.weight + 0.1 * s.weight)
    assert torch.allclose(t.bias, 0.9 * t0.bias + 0.1 * s.bias)
    assert cosine_momentum(0, 10) == pytest.approx(0.996)
    assert cosine_momentum(10, 10) == pytest.approx(1.0)
    assert cosine_momentum(5, 10) == pytest.approx(0.998)


def test_dino_loss_against_a_direct_computation():
    torch.manual_seed(0)
    k, b, v = 8, 3, 4
    student, teacher = torch.randn(v * b, k), torch.randn(2 * b, k)
    crit = DINOLoss(k)
    crit.center.fill_(0.5)
    loss = crit(student, teacher, v)
    q = F.softmax((teacher - 0.5) / 0.04, -1).chunk(2)
    s = F.log_softmax(student / 0.1, -1).chunk(v)
    terms = [-(q[i] * s[j]).sum(-1).mean() for i in range(2) for j in range(v) if i != j]
    assert torch.allclose(loss, torch.stack(terms).mean())
    assert torch.allclose(crit.center, 0.9 * 0.5 + 0.1 * teacher.mean(0, keepdim=True))


def test_multicrop_shapes_are_crop_major():
    torch.manual_seed(0)
    imgs = [torch.randint(0, 255, (3, 60 + 10 * i, 80), dtype=torch.uint8) for i in range(3)]
    glob, local = MultiCrop(42, 28, 2).batch(imgs)
    assert glob.shape == (6, 3, 42, 42) and local.shape == (6, 3, 28, 28)


def test_dino_step_lowers_the_loss_on_a_fixed_batch():
    """A few student steps against a fixed teacher output lower the DINO loss."""
    torch.manual_seed(0)
    student = DINOStudent(build_tiny_vit(img_size=56, init_values=0.1), out_dim=64)
    teacher = copy.deepcopy(student)
    glob = torch.randn(4, 3, 56, 56)
    with torch.no_grad():
        t_out = teacher(glob)
    crit = DINOLoss(64, center_momentum=1.0)  # a fixed centre: the target does not move
    opt = torch.optim.AdamW(student.parameters(), lr=5e-5)
    losses = []
    for _ in range(6):
        loss = crit(student(glob), t_out, 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.85 * losses[0]  # fixed seed: 2.771 -> 2.184
