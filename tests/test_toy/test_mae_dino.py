"""The MAE and DINO objectives of the toy encoders' pretraining."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from mmsamantics.models import DINOv2Encoder, SAMImageEncoder
from mmsamantics_toy.pretraining import (DINOLoss, MaskedImageModel, MultiCrop,
                                         cosine_momentum, ema_update, patchify,
                                         pretrain_toy_dinov2, random_patch_mask)
from mmsamantics_toy.pretraining.dino import (IBOTPatchLoss, ibot_masks, koleo_loss,
                                              teacher_temperature)
from mmsamantics_toy.pretraining.toy_dinov2 import DINOStudent, build_tiny_vit


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


def test_ibot_masks_spread_the_ratios_over_half_the_crops():
    m = ibot_masks(8, 64, 0.5, (0.1, 0.5), torch.Generator().manual_seed(0))
    # linspace(0.1, 0.5, 4) * 64 = 6.4, 14.9, 23.5, 32 patches on 4 of the 8 crops
    assert sorted(m.sum(1).tolist()) == [0, 0, 0, 0, 6, 15, 23, 32]
    assert torch.equal(m, ibot_masks(8, 64, 0.5, (0.1, 0.5), torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match='ratio_range'):
        ibot_masks(2, 16, 0.5, (0.5, 1.0))


def test_ibot_loss_against_a_direct_computation():
    torch.manual_seed(0)
    mask = torch.tensor([[True, False, True], [False, False, False], [False, True, False]])
    student, teacher = torch.randn(3, 5), torch.randn(3, 5)  # rows: mask.nonzero() order
    crit = IBOTPatchLoss(5)
    crit.center.fill_(0.2)
    loss = crit(student, teacher, mask, teacher_temp=0.05)
    ce = -(F.softmax((teacher - 0.2) / 0.05, -1) * F.log_softmax(student / 0.1, -1)).sum(-1)
    # mean over each image's masked patches, then over the images with a masked patch
    assert torch.allclose(loss, ((ce[0] + ce[1]) / 2 + ce[2]) / 2)
    assert torch.allclose(crit.center, 0.9 * 0.2 + 0.1 * teacher.mean(0, keepdim=True))
    assert crit(student[:0], teacher[:0], torch.zeros_like(mask)).item() == 0


def test_koleo_and_teacher_temperature_are_the_formulas():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])  # unit: e1, e2, -e1
    d = torch.tensor([2 ** 0.5, 2 ** 0.5, 2 ** 0.5])  # each one's nearest is at sqrt(2)
    assert torch.allclose(koleo_loss(x), -torch.log(d).mean(), atol=1e-6)
    assert koleo_loss(torch.tensor([[1.0, 0.0], [1.0, 0.01]])) > koleo_loss(x)
    assert koleo_loss(x[:1]).item() == 0  # a one-image batch has no neighbour
    assert teacher_temperature(0, 10) == pytest.approx(0.04)
    assert teacher_temperature(5, 10) == pytest.approx(0.055)
    assert teacher_temperature(10, 10) == teacher_temperature(99, 10) == pytest.approx(0.07)


def test_student_tokens_are_timm_features_and_the_mask_token_enters():
    torch.manual_seed(0)
    student = DINOStudent(build_tiny_vit(img_size=56, init_values=0.1), out_dim=16).eval()
    x = torch.randn(2, 3, 56, 56)
    assert torch.allclose(student.tokens(x), student.vit.forward_features(x), atol=1e-6)
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[0, 3] = True
    with torch.no_grad():
        student.mask_token.fill_(1.0)
        out = student.tokens(x, mask)
    assert torch.allclose(out[1], student.vit.forward_features(x)[1], atol=1e-6)
    assert not torch.allclose(out[0], student.vit.forward_features(x)[0], atol=1e-3)


def test_ibot_step_lowers_the_masked_patch_loss_on_a_fixed_batch():
    """The student, seeing mask tokens, learns to predict the teacher's patch outputs."""
    torch.manual_seed(0)
    student = DINOStudent(build_tiny_vit(img_size=56, init_values=0.1), out_dim=32)
    teacher = copy.deepcopy(student)
    glob = torch.randn(4, 3, 56, 56)
    mask = ibot_masks(4, 16, 1.0, (0.3, 0.5), torch.Generator().manual_seed(0))
    with torch.no_grad():
        t_out = teacher.head(teacher.tokens(glob)[:, 1:][mask])
    crit = IBOTPatchLoss(32, center_momentum=1.0)
    opt = torch.optim.AdamW(student.parameters(), lr=5e-4)
    losses = []
    for _ in range(6):
        loss = crit(student.head(student.tokens(glob, mask)[:, 1:][mask]), t_out, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


def test_pretraining_is_deterministic_and_loads_as_dinov2(tmp_path):
    kw = dict(epochs=1, batch_size=4, max_images=4, out_dim=16)
    for i in range(4):
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 255, (70, 80, 3), dtype=np.uint8)).save(
            tmp_path / f'{i}.png')
    r = pretrain_toy_dinov2(str(tmp_path), str(tmp_path / 'a.pth'), **kw)
    pretrain_toy_dinov2(str(tmp_path), str(tmp_path / 'b.pth'), **kw)
    a, b = torch.load(tmp_path / 'a.pth'), torch.load(tmp_path / 'b.pth')
    assert r['steps'] == 1 and all(torch.equal(a[k], b[k]) for k in a)
    assert 'mask_token' not in a  # timm's layout: the iBOT mask token is not saved
    DINOv2Encoder(preset='tiny', checkpoint=str(tmp_path / 'a.pth'), img_size=56)
