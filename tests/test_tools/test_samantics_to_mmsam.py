"""tools/model_converters/samantics_to_mmsam.py: a checkpoint of the authors' code (their key
names by the layout of their RefSAMDetector) converts to ours and back bit-identically, their
precomputed references become a reference bank, and every key it cannot place is named."""
import os.path as osp

import pytest
import torch
from mmengine.logging import MessageHub

from mmsamantics.datasets import split_classes
from mmsamantics.structures.reference_bank import load_reference_bank
from authors_helpers import authors_layout, built_model, random_sam_config
from helpers import TOY_CONFIG, load_tool

TOOL = load_tool('tools/model_converters/samantics_to_mmsam.py')
# segment_anything_hq re-registers timm's TinyViT models on import (its code, not ours)
pytestmark = pytest.mark.filterwarnings('ignore:Overwriting tiny_vit:UserWarning',
                                        'ignore:Importing from timm.models:FutureWarning')
FAMILIES = {'sam', 'neck', 'encoder', 'decoder', 'bbox_head', 'query_embedding',
            'level_embed', 'reference_points_fc', 'ref_tokens_fuser', 'query_cache',
            'label_cache'}


@pytest.fixture(scope='module')
def theirs(tmp_path_factory):
    """An HQ-SAM checkpoint of the authors' code in mmengine's format (weights, meta,
    optimizer, message hub) with 6 precomputed references, and the model it came from."""
    tmp = tmp_path_factory.mktemp('samantics')
    config = random_sam_config(str(tmp))
    model = built_model(config)
    g = torch.Generator().manual_seed(1)
    tokens = torch.randn(6, *model.reference_feature_shape, generator=g)
    labels = torch.tensor([[0.], [0.], [17.], [17.], [79.], [3.]])
    state = authors_layout(model, (tokens, labels)).state_dict()
    meta = dict(epoch=50, iter=123, seed=0, mmengine_version='0.10.7',
                dataset_meta=dict(classes=tuple(split_classes('coco'))))
    hub = MessageHub.get_instance('samantics_checkpoint')
    hub.update_scalar('train/loss', 1.5)
    ckpt = dict(meta=meta, state_dict=state, message_hub=hub.state_dict(),
                optimizer=dict(state={0: dict(step=torch.tensor(3.))},
                               param_groups=[dict(lr=2e-4, params=[0])]),
                param_schedulers=[dict(milestones={40: 1}, last_epoch=50)])
    path = str(tmp / 'epoch_50.pth')
    torch.save(ckpt, path)
    return dict(tmp=tmp, config=config, model=model, ckpt=ckpt, path=path,
                tokens=tokens, labels=labels)


def test_round_trip_is_bit_identical(theirs):
    """theirs -> ours -> theirs: the same keys, dtypes and bytes (every key family,
    their reference buffers through the bank) and their meta; ours holds each tensor where
    our model has it."""
    tmp = theirs['tmp']
    ours, back, bank = str(tmp / 'ours.pth'), str(tmp / 'back.pth'), str(tmp / 'bank.pth')
    dropped = TOOL.convert(theirs['path'], ours, config=theirs['config'], bank=bank)
    assert dropped == ['message_hub', 'optimizer', 'param_schedulers']
    TOOL.convert(ours, back, reverse=True, bank=bank)
    src, out = theirs['ckpt']['state_dict'], torch.load(back, weights_only=True)
    assert {k.split('.')[0] for k in src} == FAMILIES
    assert list(out['state_dict']) == list(src)
    for k, v in src.items():
        w = out['state_dict'][k]
        assert w.dtype == v.dtype and w.shape == v.shape and torch.equal(w, v), k
    assert out['meta'] == theirs['ckpt']['meta'] and set(out) == {'meta', 'state_dict'}
    mine = theirs['model'].state_dict()
    converted = torch.load(ours, weights_only=True)['state_dict']
    assert list(converted) == list(mine)
    assert all(torch.equal(converted[k], v) for k, v in mine.items())


def test_reference_buffers_become_a_bank_the_model_reads(theirs):
    tmp = theirs['tmp']
    bank = str(tmp / 'bank2.pth')
    TOOL.convert(theirs['path'], str(tmp / 'ours2.pth'), config=theirs['config'], bank=bank)
    b = load_reference_bank(bank)
    coco = split_classes('coco')
    assert b['labels'] == [coco[i] for i in (0, 0, 17, 17, 79, 3)]
    assert torch.equal(b['tokens'], theirs['tokens']) and len(set(b['keys'])) == 6
    model = theirs['model']  # its signature: the converted SAM and the authors' conventions
    assert b['signature'] == model.cache_signature
    assert torch.equal(model.load_bank(bank)['tokens'], theirs['tokens'])
    plain = built_model(random_sam_config(str(tmp), authors_conventions=False))
    plain.load_state_dict(model.state_dict())
    with pytest.raises(ValueError, match='another SAM or preprocessing'):
        plain.load_bank(bank)  # made under the authors' conventions, refused without them


def test_plain_sam_checkpoint_converts(theirs, tmp_path):
    """Their plain-SAM layout (4 mask tokens, no HQ parts) into the plain tiny config."""
    config = random_sam_config(str(tmp_path), TOY_CONFIG)
    model = built_model(config)
    src = str(tmp_path / 'plain.pth')
    torch.save(dict(meta={}, state_dict=authors_layout(model).state_dict()), src)
    TOOL.main([src, str(tmp_path / 'ours.pth'), '--config', config])
    ours = torch.load(str(tmp_path / 'ours.pth'), weights_only=True)['state_dict']
    assert all(torch.equal(ours[k], v) for k, v in model.state_dict().items())
    # the HQ config refuses it, naming the HQ parts it lacks
    with pytest.raises(RuntimeError, match='missing keys: mask_head.decoder.mask_decoder.'
                                           'compress_vit_feat'):
        TOOL.convert(src, str(tmp_path / 'x.pth'), config=theirs['config'])


def _saved(tmp_path, state: dict) -> str:
    path = str(tmp_path / 'edited.pth')
    torch.save(dict(meta={}, state_dict=state), path)
    return path


def test_keys_it_cannot_place_are_named(theirs, tmp_path, capsys):
    state = dict(theirs['ckpt']['state_dict'])
    out = str(tmp_path / 'out.pth')
    with pytest.raises(ValueError, match='6 precomputed references.*--bank'):
        TOOL.convert(_saved(tmp_path, state), out)
    for k in ('query_cache', 'label_cache'):
        state.pop(k)
    state['sam.pixel_mean'] = torch.zeros(3, 1, 1)
    state['ref_tokens_fuser.norm.weight'] = torch.ones(3)
    with pytest.raises(KeyError, match='not parameters of .*: sam.pixel_mean, '
                                       'ref_tokens_fuser.norm.weight'):
        TOOL.convert(_saved(tmp_path, state), out)
    state = {k: v for k, v in state.items() if not k.startswith(('reference_points_fc.',
                                                                 'sam.pixel_mean',
                                                                 'ref_tokens_fuser.norm'))}
    with pytest.raises(SystemExit, match=r'lacks parts .*: no reference_points_fc\.\*'):
        TOOL.main([_saved(tmp_path, state), out])
    with pytest.raises(SystemExit, match='checkpoint not found'):
        TOOL.main([str(tmp_path / 'missing.pth'), out])
    assert not osp.exists(out)
    # ours -> theirs: parts their code does not have (a region-token model's) are named
    ours = dict(theirs['model'].state_dict(), **{'reference_sources.0.proj.weight':
                                                torch.zeros(1)})
    with pytest.raises(KeyError, match='no counterpart .*: reference_sources.0'):
        TOOL.convert(_saved(tmp_path, ours), out, reverse=True)
