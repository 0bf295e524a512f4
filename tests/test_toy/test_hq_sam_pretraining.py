"""HQ-SAM training of the toy SAM: only the HQ parameters learn, the result is an official
HQ-SAM checkpoint, and the run is reproducible."""
import numpy as np
import pytest
import torch

from helpers import load_tool
from mmsamantics.models import HQSAMPromptDecoder, SAMImageEncoder, SAMPromptDecoder
from mmsamantics_toy.pretraining import pretrain_toy_hq_sam
from mmsamantics_toy.pretraining.hq_sam import (PROMPTS, build_toy_hq_sam, encode_instances,
                                                hq_loss, hq_named_parameters)
from mmsamantics_toy.pretraining.promptable_sam import load_prompt_instances

# segment_anything_hq re-registers timm's TinyViT models on import (its code, not ours)
pytestmark = pytest.mark.filterwarnings('ignore:Overwriting tiny_vit:UserWarning',
                                        'ignore:Importing from timm.models:FutureWarning')
HQ_KEYS = ('hf_token', 'hf_mlp', 'compress_vit_feat', 'embedding_encoder',
           'embedding_maskfeature')


@pytest.fixture(scope='module')
def sam_ckpt(tmp_path_factory) -> str:
    """A random tiny SAM in the official layout (the tests need no pretraining run)."""
    torch.manual_seed(0)
    enc, dec = SAMImageEncoder(preset='tiny'), SAMPromptDecoder(preset='tiny')
    state = {f'image_encoder.{k}': v for k, v in enc.encoder.state_dict().items()}
    state.update({f'prompt_encoder.{k}': v for k, v in dec.prompt_encoder.state_dict().items()})
    state.update({f'mask_decoder.{k}': v for k, v in dec.mask_decoder.state_dict().items()})
    path = str(tmp_path_factory.mktemp('sam') / 'sam_tiny.pth')
    torch.save(state, path)
    return path


def _fixed_loss(dec, batch) -> float:
    """The HQ loss with the same prompt draws and sampled points every call."""
    torch.manual_seed(0)
    with torch.no_grad():
        return hq_loss(dec, batch, PROMPTS, np.random.default_rng(0)).item()


def test_hq_loss_decreases_and_only_hq_parameters_change(toy_root, sam_ckpt):
    torch.manual_seed(0)
    enc, dec, _ = build_toy_hq_sam(sam_ckpt)
    batch = encode_instances(enc, load_prompt_instances(
        f'{toy_root}/annotations/instances_train.json', f'{toy_root}/train', 256, 2))
    hq = dict(hq_named_parameters(dec))
    assert {n.split('.')[0] for n in hq} == set(HQ_KEYS)
    trainable = {n for n, p in [*enc.named_parameters(), *dec.named_parameters()]
                 if p.requires_grad}
    assert trainable == {f'mask_decoder.{n}' for n in hq}
    before = {k: v.clone() for k, v in [*enc.state_dict().items(), *dec.state_dict().items()]}
    first = _fixed_loss(dec, batch)
    opt = torch.optim.Adam(hq.values(), lr=1e-3)
    rng = np.random.default_rng(1)
    for _ in range(5):
        opt.zero_grad()
        hq_loss(dec, batch, PROMPTS, rng).backward()
        opt.step()
    assert _fixed_loss(dec, batch) < 0.9 * first
    after = {**enc.state_dict(), **dec.state_dict()}
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {f'mask_decoder.{n}' for n in hq}  # SAM's weights: bit-identical


def test_checkpoint_is_hq_sam_layout_reproducible_and_loads_strictly(toy_root, sam_ckpt,
                                                                      tmp_path):
    kw = dict(ann_file=f'{toy_root}/annotations/instances_train.json',
              img_dir=f'{toy_root}/train', sam_checkpoint=sam_ckpt, seed=2, epochs=2,
              lr_drop_epoch=1, max_images=3,
              val=(f'{toy_root}/annotations/instances_val.json', f'{toy_root}/val'),
              max_val_images=2)
    r = pretrain_toy_hq_sam(out=str(tmp_path / 'a.pth'), **kw)
    pretrain_toy_hq_sam(out=str(tmp_path / 'b.pth'), **kw)
    a, b = torch.load(tmp_path / 'a.pth'), torch.load(tmp_path / 'b.pth')
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # seeded
    sam = torch.load(sam_ckpt)
    hq_keys = set(a) - set(sam)
    assert {k.split('.')[1] for k in hq_keys} == set(HQ_KEYS)
    assert all(k.startswith('mask_decoder.') for k in hq_keys)
    assert all(torch.equal(a[k], sam[k]) for k in sam)  # SAM's keys unchanged
    # the HQ weights moved away from their initialisation (same seed, same init)
    torch.manual_seed(2)
    _, init, _ = build_toy_hq_sam(sam_ckpt)
    assert all(not torch.equal(a[f'mask_decoder.{n}'], p) for n, p in hq_named_parameters(init))
    dec = HQSAMPromptDecoder(preset='tiny', checkpoint=str(tmp_path / 'a.pth'))
    SAMImageEncoder(preset='tiny', checkpoint=str(tmp_path / 'a.pth'), hq_interm=True)
    assert torch.equal(dec.mask_decoder.hf_token.weight, a['mask_decoder.hf_token.weight'])
    # the plain SAM decoder's IoU does not depend on the HQ training
    assert r['val_before']['sam'] == r['val_after']['sam']
    assert set(r['val_after']) == {'sam', 'hq_sam', 'hq_token'}


def test_bad_inputs_are_refused(toy_root, sam_ckpt, tmp_path):
    ann, img_dir = f'{toy_root}/annotations/instances_train.json', f'{toy_root}/train'
    hq = {**torch.load(sam_ckpt), 'mask_decoder.hf_token.weight': torch.zeros(1, 64)}
    torch.save(hq, tmp_path / 'hq.pth')
    with pytest.raises(ValueError, match='already holds HQ-SAM weights.*plain SAM'):
        build_toy_hq_sam(str(tmp_path / 'hq.pth'))
    with pytest.raises(ValueError, match=r"non-empty subset of \['box', 'point'\]"):
        pretrain_toy_hq_sam(ann, img_dir, str(tmp_path / 'o.pth'), sam_ckpt,
                            prompts=('noisy_mask',))
    tool = load_tool('tools/misc/pretrain_toy_hq_sam.py')
    with pytest.raises(SystemExit, match='missing.pth not found.*pretrain_toy_sam.py'):
        tool.main([toy_root, '--sam-checkpoint', str(tmp_path / 'missing.pth')])
