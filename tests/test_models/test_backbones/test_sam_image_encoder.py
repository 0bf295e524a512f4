import pytest
import torch

from mmsamantics.models import SAMImageEncoder, SAMPromptDecoder
from mmsamantics.utils import MissingResourceError


def test_shapes_frozen_and_matches_segment_anything():
    torch.manual_seed(0)
    enc = SAMImageEncoder(preset='tiny')
    x = torch.randn(2, 3, 256, 256)
    *levels, emb = enc(x)
    assert len(levels) == 2 and all(f.shape == (2, 96, 16, 16) for f in levels)
    # the levels are the global-attention blocks' outputs, computed here directly
    h = enc.encoder.patch_embed(x) + enc.encoder.pos_embed
    for i, blk in enumerate(enc.encoder.blocks):
        h = blk(h)
        if i in (1, 3):
            assert torch.allclose(levels[(1, 3).index(i)], h.permute(0, 3, 1, 2), atol=1e-6)
    assert len(SAMImageEncoder(preset='tiny', out_indices=(0, 1, 2, 3))(x)) == 5
    assert emb.shape == (2, 64, 16, 16)
    # the neck embedding is exactly what segment_anything's encoder returns
    assert torch.allclose(emb, enc.encoder(x), atol=1e-6)
    assert not any(p.requires_grad for p in enc.parameters())
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    enc.init_weights()  # the runner calls this: it must not touch SAM's weights
    assert all(torch.equal(v, enc.state_dict()[k]) for k, v in before.items())
    enc.train()
    assert not enc.encoder.training
    assert not emb.requires_grad


def test_real_presets_match_segment_anything():
    # the real presets must be exactly segment_anything's build_sam settings (no 90M build)
    from mmsamantics.models.sam import get_preset
    assert get_preset('vit_b')['global_attn_indexes'] == (2, 5, 8, 11)
    assert get_preset('vit_l')['global_attn_indexes'] == (5, 11, 17, 23)
    assert get_preset('vit_h')['global_attn_indexes'] == (7, 15, 23, 31)
    assert [get_preset(n)['embed_dim'] for n in ('vit_b', 'vit_l', 'vit_h')] == [768, 1024, 1280]
    with pytest.raises(KeyError, match='unknown SAM preset'):
        get_preset('vit_x')


def test_wrong_input_size_is_explained():
    with pytest.raises(ValueError, match='expects 256x256.*pad_size_divisor=256'):
        SAMImageEncoder(preset='tiny')(torch.zeros(1, 3, 200, 256))


def test_checkpoint_loading_is_strict_and_readable(tmp_path):
    torch.manual_seed(1)
    src = SAMImageEncoder(preset='tiny')
    dec = SAMPromptDecoder(preset='tiny')
    state = {f'image_encoder.{k}': v for k, v in src.encoder.state_dict().items()}
    state.update({f'prompt_encoder.{k}': v for k, v in dec.prompt_encoder.state_dict().items()})
    state.update({f'mask_decoder.{k}': v for k, v in dec.mask_decoder.state_dict().items()})
    good = tmp_path / 'sam_tiny.pth'
    torch.save(state, good)
    loaded = SAMImageEncoder(preset='tiny', checkpoint=str(good))
    for k, v in src.encoder.state_dict().items():
        assert torch.equal(v, loaded.encoder.state_dict()[k])
    loaded_dec = SAMPromptDecoder(preset='tiny', checkpoint=str(good))
    assert torch.equal(loaded_dec.mask_decoder.iou_token.weight, dec.mask_decoder.iou_token.weight)

    broken = dict(state)
    broken.pop('image_encoder.neck.0.weight')
    broken['image_encoder.extra.weight'] = torch.zeros(1)
    torch.save(broken, tmp_path / 'broken.pth')
    with pytest.raises(RuntimeError, match=r'missing keys: neck\.0\.weight.*unexpected keys: '
                                           r'extra\.weight'):
        SAMImageEncoder(preset='tiny', checkpoint=str(tmp_path / 'broken.pth'))
    with pytest.raises(MissingResourceError, match='sam_vit_b_01ec64.pth'):
        SAMImageEncoder(preset='vit_b', checkpoint=str(tmp_path / 'sam_vit_b_01ec64.pth'))
