"""SAM 3 vision backbone: equal to sam3's own backbone forward for the same weights (tiny
preset on the CPU; the full preset on a GPU against sam3's own builder), frozen, strictly
loaded from a checkpoint in the released layout, with clear errors."""
import pytest
import torch

from mmdet.registry import MODELS
from mmsamantics.models import SAM3ImageEncoder
from mmsamantics.models.sam3 import build_sam3_image, write_tiny_bpe
from mmsamantics.utils import MissingResourceError


@pytest.fixture(scope='module')
def ref(tmp_path_factory):
    """Our encoder loaded from a tiny ``Sam3Image`` saved as the released ``sam3.pt`` is
    (``{'model': {'detector.*', 'tracker.*'}}``), with a SAM 2-style second neck that the
    encoder must leave out."""
    tmp = tmp_path_factory.mktemp('sam3_encoder')
    torch.manual_seed(0)
    sam3 = build_sam3_image('tiny', write_tiny_bpe(str(tmp / 'bpe.txt.gz')))
    state = {f'detector.{k}': v for k, v in sam3.state_dict().items()}
    state['detector.backbone.vision_backbone.sam2_convs.0.conv_1x1.weight'] = torch.zeros(1)
    state['tracker.maskmem_tpos_enc'] = torch.zeros(1)
    path = str(tmp / 'sam3_tiny.pt')
    torch.save({'model': state}, path)
    torch.manual_seed(1)  # other random weights: only the checkpoint can make them equal
    enc = SAM3ImageEncoder(preset='tiny', checkpoint=path, out_levels=(0, 1, 2, 3))
    x = torch.randn(2, 3, 112, 112)
    return dict(sam3=sam3, enc=enc, x=x, out=enc(x), path=path)


def test_equals_sam3_backbone_forward(ref):
    """Exactly sam3's own ``SAM3VLBackbone.forward_image`` (levels 0..2 and
    ``vision_features``) and its neck's level 3 (which ``scalp=1`` drops)."""
    *levels, vision_features = ref['out']
    with torch.no_grad():
        theirs = ref['sam3'].backbone.forward_image(ref['x'])
        neck_levels = ref['sam3'].backbone.vision_backbone(ref['x'])[0]
    assert torch.equal(vision_features, theirs['vision_features'])
    assert all(torch.equal(a, b) for a, b in zip(levels[:3], theirs['backbone_fpn']))
    assert len(levels) == len(neck_levels) == 4
    assert all(torch.equal(a, b) for a, b in zip(levels, neck_levels))


def test_shapes_frozen_and_init_weights(ref):
    enc, out = ref['enc'], ref['out']
    # patch grid 112 / 14 = 8; levels at scales 4, 2, 1, 1/2 of it; d_model 32
    assert [tuple(f.shape) for f in out] == [(2, 32, s, s) for s in (32, 16, 8, 4, 8)]
    assert enc.out_channels == [32] * 5 and enc.img_size == 112
    default = SAM3ImageEncoder(preset='tiny')
    assert default.out_levels == (1, 2, 3) and default.out_channels == [32] * 4
    assert not any(p.requires_grad for p in enc.parameters()) and not out[-1].requires_grad
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    enc.init_weights()  # the runner calls this: it must not touch SAM 3's weights
    assert all(torch.equal(v, enc.state_dict()[k]) for k, v in before.items())
    enc.train()
    assert not any(m.training for m in enc.modules() if m is not enc)


def test_registered_and_clear_errors(ref, tmp_path):
    enc = MODELS.build(dict(type='SAM3ImageEncoder', preset='tiny', out_levels=(2, )))
    assert isinstance(enc, SAM3ImageEncoder)
    with pytest.raises(ValueError, match='expects 112x112.*pad_size_divisor=112'):
        enc(torch.zeros(1, 3, 100, 112))
    with pytest.raises(ValueError, match=r'out_levels \(4,\) out of range'):
        SAM3ImageEncoder(preset='tiny', out_levels=(4, ))
    with pytest.raises(KeyError, match="unknown SAM 3 preset 'large'.*'full', 'tiny'"):
        SAM3ImageEncoder(preset='large')
    with pytest.raises(MissingResourceError, match='nope/sam3.pt.*huggingface.co/facebook/sam3'):
        SAM3ImageEncoder(preset='tiny', checkpoint='nope/sam3.pt')
    state = torch.load(ref['path'], weights_only=True)['model']
    del state['detector.backbone.vision_backbone.trunk.ln_pre.weight']
    torch.save(state, str(tmp_path / 'cut.pt'))
    with pytest.raises(RuntimeError, match='missing keys: trunk.ln_pre.weight'):
        SAM3ImageEncoder(preset='tiny', checkpoint=str(tmp_path / 'cut.pt'))


@pytest.mark.gpu
def test_full_preset_equals_sam3_builder_on_gpu():
    """The full preset (built without sam3's "cuda" position-encoding cache) against
    sam3's own ``_create_vision_backbone`` (which needs CUDA), same random weights and
    input, fp32."""
    from sam3.model_builder import _create_vision_backbone
    torch.manual_seed(0)
    with torch.device('cuda'):
        theirs = _create_vision_backbone(enable_inst_interactivity=False).eval()
        ours = SAM3ImageEncoder(preset='full', out_levels=(0, 1, 2, 3),
                                frozen_autocast='off')
    ours.vision_backbone.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(1, 3, 1008, 1008, device='cuda')
    with torch.no_grad():
        neck_levels = theirs(x)[0]
    *levels, vision_features = ours(x)
    assert [tuple(f.shape[-2:]) for f in levels] == [(s, s) for s in (288, 144, 72, 36)]
    assert all(torch.equal(a, b) for a, b in zip(levels, neck_levels))
    assert torch.equal(vision_features, neck_levels[2])
