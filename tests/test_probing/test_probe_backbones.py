"""Probe backbones: pooled shapes and values against direct computations, frozen state,
checkpoint loading and the errors for bad input."""
import pytest
import torch

from mmsamantics.probing import (SAM2ProbeBackbone, SAM3ProbeBackbone, SAMProbeBackbone,
                                 TimmProbeBackbone)
from mmsamantics.utils import MissingResourceError

TINY_VIT = dict(embed_dim=32, depth=1, num_heads=2)


def _sam():
    return SAMProbeBackbone('tiny', preset_overrides=dict(img_size=64))


def _sam2():
    return SAM2ProbeBackbone('tiny', preset_overrides=dict(image_size=64))


def _sam3():
    return SAM3ProbeBackbone('tiny')


def _dinov2(**kw):
    return TimmProbeBackbone('vit_small_patch14_dinov2', 'cls',
                             timm_kwargs=dict(img_size=28, **TINY_VIT), **kw)


def _clip(**kw):
    return TimmProbeBackbone('vit_base_patch16_clip_quickgelu_224', 'embedding',
                             timm_kwargs=dict(img_size=32, num_classes=8, **TINY_VIT), **kw)


def test_sam_pooled_is_mean_of_neck_embedding():
    torch.manual_seed(0)
    bb, x = _sam(), torch.randn(2, 3, 64, 64)
    (f, ) = bb(x)
    # independent path: segment_anything's own ImageEncoderViT.forward (blocks + neck)
    ref = bb.encoder.encoder(x).mean(dim=(2, 3))
    assert f.shape == (2, 64) and bb.out_channels == 64
    torch.testing.assert_close(f, ref, rtol=1e-5, atol=1e-5)


def test_sam2_pooled_is_mean_of_vision_features():
    torch.manual_seed(0)
    bb, x = _sam2(), torch.randn(2, 3, 64, 64)
    (f, ) = bb(x)
    # the detector backbone's stride-16 embedding = vision_features + no_mem_embed
    image_embed = bb.encoder(x)[-1][0]
    ref = (image_embed - bb.encoder.no_mem_embed.view(1, -1, 1, 1)).mean(dim=(2, 3))
    assert f.shape == (2, 64) and bb.out_channels == 64
    torch.testing.assert_close(f, ref, rtol=1e-5, atol=1e-5)


def test_sam3_pooled_is_mean_of_vision_features():
    torch.manual_seed(0)
    bb, x = _sam3(), torch.randn(2, 3, 112, 112)
    (f, ) = bb(x)
    # independent path: sam3's own neck forward (Sam3DualViTDetNeck), level 2 = the
    # vision_features sam3's image model reads
    ref = bb.encoder.vision_backbone(x)[0][2].mean(dim=(2, 3))
    assert f.shape == (2, 32) and bb.out_channels == 32 and bb.img_size == 112
    assert torch.equal(f, ref)


def test_timm_cls_and_clip_embedding():
    torch.manual_seed(0)
    dino, clip = _dinov2(), _clip()
    x28, x32 = torch.randn(3, 3, 28, 28), torch.randn(3, 3, 32, 32)
    (f, ) = dino(x28)
    assert f.shape == (3, 32) and dino.out_channels == 32
    torch.testing.assert_close(f, dino.encoder.forward_features(x28)[:, 0])
    (e, ) = clip(x32)
    # the CLIP image embedding: final-norm CLS token times the projection (timm's head)
    cls = clip.encoder.forward_features(x32)[:, 0]
    ref = cls @ clip.encoder.head.weight.T + clip.encoder.head.bias
    assert e.shape == (3, 8) and clip.out_channels == 8
    torch.testing.assert_close(e, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('make', [_sam, _sam2, _sam3, _dinov2],
                         ids=['sam', 'sam2', 'sam3', 'timm'])
def test_frozen_through_train_and_no_grad(make):
    bb = make()
    bb.train()
    assert not any(p.requires_grad for p in bb.parameters())
    assert not any(m.training for m in bb.modules())
    side = bb.img_size
    (f, ) = bb(torch.randn(1, 3, side, side))
    assert not f.requires_grad and f.grad_fn is None


def test_timm_checkpoint_roundtrip_and_official_dinov2_keys(tmp_path):
    torch.manual_seed(0)
    src = _dinov2()
    state = {k: v.clone() for k, v in src.encoder.state_dict().items()}
    state['mask_token'] = torch.zeros(1, 32)  # official DINOv2 files carry it; timm drops it
    path = str(tmp_path / 'dinov2.pth')
    torch.save(state, path)
    torch.manual_seed(1)
    dst = _dinov2(checkpoint=path)
    x = torch.randn(2, 3, 28, 28)
    torch.testing.assert_close(dst(x)[0], src(x)[0])
    from safetensors.torch import save_file
    sf = str(tmp_path / 'clip.safetensors')
    clip = _clip()
    save_file({k: v.contiguous() for k, v in clip.encoder.state_dict().items()}, sf)
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(_clip(checkpoint=sf)(x)[0], clip(x)[0])


def test_clear_errors():
    with pytest.raises(MissingResourceError, match='dinov2_vits14_pretrain.pth'):
        TimmProbeBackbone('vit_small_patch14_dinov2', checkpoint='nope/dinov2.pth')
    with pytest.raises(MissingResourceError, match='sam_vit_b_01ec64.pth'):
        SAMProbeBackbone('vit_b', checkpoint='nope/sam_vit_b_01ec64.pth')
    with pytest.raises(MissingResourceError, match='sam3.pt'):
        SAM3ProbeBackbone('full', checkpoint='nope/sam3.pt')
    with pytest.raises(ValueError, match='num_classes'):
        TimmProbeBackbone('vit_base_patch16_clip_224', 'embedding')
    with pytest.raises(ValueError, match='feature must be'):
        TimmProbeBackbone('vit_small_patch14_dinov2', 'mean')
    with pytest.raises(ValueError, match='64x64'):
        _sam()(torch.randn(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r'\(B, 3, H, W\)'):
        _sam()(torch.randn(2, 64))


def test_registered_in_mmpretrain():
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):  # what the configs select
        bb = MODELS.build(dict(type='SAMProbeBackbone', preset='tiny',
                               preset_overrides=dict(img_size=64)))
    assert isinstance(bb, SAMProbeBackbone)
