"""Probe backbones encode a batch ``micro_batch`` images at a time, with the result of one
call over the whole batch."""
import pytest
import torch

from mmsamantics.probing import SAM2ProbeBackbone, SAMProbeBackbone, TimmProbeBackbone


@pytest.mark.parametrize('make', [
    lambda mb: SAMProbeBackbone('tiny', preset_overrides=dict(img_size=64), micro_batch=mb),
    lambda mb: SAM2ProbeBackbone('tiny', preset_overrides=dict(image_size=64), micro_batch=mb),
    lambda mb: TimmProbeBackbone('vit_small_patch14_dinov2', 'cls', micro_batch=mb,
                                 timm_kwargs=dict(img_size=28, embed_dim=32, depth=1,
                                                  num_heads=2))], ids=['sam', 'sam2', 'timm'])
def test_micro_batches_equal_one_call(make):
    torch.manual_seed(0)
    split = make(2)
    whole = make(0)
    whole.load_state_dict(split.state_dict())
    size = split.img_size or 28
    x = torch.randn(5, 3, size, size)
    calls = []
    pool = split.pool
    split.pool = lambda chunk: calls.append(len(chunk)) or pool(chunk)
    (out, ) = split(x)
    (ref, ) = whole(x)
    assert calls == [2, 2, 1]
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_default_and_bad_micro_batch():
    assert SAMProbeBackbone('tiny', preset_overrides=dict(img_size=64)).micro_batch == 4
    with pytest.raises(ValueError, match='micro_batch must be >= 0'):
        SAMProbeBackbone('tiny', preset_overrides=dict(img_size=64), micro_batch=-1)
