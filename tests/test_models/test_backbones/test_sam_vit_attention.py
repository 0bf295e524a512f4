"""Frozen encoders made fast: SAM's ViT attention through SDPA, bf16 autocast, micro-batches."""
import copy

import pytest
import torch
from mmengine.structures import InstanceData
from segment_anything.modeling.image_encoder import Attention

from mmdet.registry import MODELS
from mmsamantics.models import SAMImageEncoder
from mmsamantics.models.backbones.sam_vit_attention import SDPAAttention


@pytest.fixture(scope='module')
def encoder():
    torch.manual_seed(0)
    enc = SAMImageEncoder(preset='tiny')
    for name, p in enc.named_parameters():
        if 'rel_pos' in name:  # SAM zero-initialises them: make the bias matter
            torch.nn.init.normal_(p, std=0.2)
    return enc


def test_sdpa_equals_segment_anything_attention(encoder):
    assert all(type(b.attn) is SDPAAttention for b in encoder.encoder.blocks)
    torch.manual_seed(1)
    x = torch.randn(2, 3, 256, 256)
    explicit = copy.deepcopy(encoder)
    SDPAAttention.convert(explicit, 'explicit')
    assert all(type(b.attn) is Attention for b in explicit.encoder.blocks)
    with torch.no_grad():
        for a, b in zip(encoder(x), explicit(x)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        # each block's attention alone, on its windowed or global token grid
        for blk in encoder.encoder.blocks:
            ref = copy.deepcopy(blk.attn)
            ref.__class__ = Attention
            side = (blk.attn.rel_pos_h.shape[0] + 1) // 2
            t = torch.randn(3, side, side, blk.attn.qkv.in_features)
            torch.testing.assert_close(blk.attn(t), ref(t), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match='attention must be one of'):
        SDPAAttention.convert(explicit, 'flash')


def test_bf16_encoder_keeps_masks_and_micro_batches(encoder, monkeypatch):
    """bf16 vs fp32 encoder on the tiny preset: box-prompt masks with IoU >= 0.98."""
    torch.manual_seed(2)
    head = MODELS.build(dict(type='SAMBoxPromptMaskHead',
                             decoder=dict(type='SAMPromptDecoder', preset='tiny')))
    x = torch.randn(6, 3, 256, 256)
    boxes = torch.tensor([[10, 20, 120, 200], [50, 50, 250, 250], [0, 0, 128, 128.]])
    metas = [dict(img_shape=(256, 256), ori_shape=(256, 256), scale_factor=(1., 1.))] * 6
    calls = []
    orig = encoder._forward
    monkeypatch.setattr(encoder, '_forward', lambda t: calls.append(len(t)) or orig(t))

    def masks(mode):
        encoder.frozen_autocast = mode
        with torch.no_grad():
            emb = encoder(x)[-1]
        assert emb.dtype == torch.float32
        res = [InstanceData(bboxes=boxes.clone(), scores=torch.ones(3)) for _ in range(6)]
        return torch.cat([r.masks for r in head.predict(emb, res, metas)]).flatten(1)

    try:
        fp32, bf16 = masks('off'), masks('bf16')
    finally:
        encoder.frozen_autocast = 'auto'
    assert calls == [4, 2, 4, 2]  # micro-batches of at most 4 images
    assert (fp32.float().mean(1) > 0.01).all()  # non-trivial masks
    iou = (fp32 & bf16).sum(1) / (fp32 | bf16).sum(1)
    assert iou.min() >= 0.98
