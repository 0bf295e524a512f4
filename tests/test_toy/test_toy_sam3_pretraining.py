"""The toy SAM 3 recipe: captions, CLIP's loss, both stages' checkpoints in the sam3.pt layout."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import load_tool, scrambled_class_ids
from mmsamantics.models.backbones.sam3_image_encoder import SAM3ImageEncoder
from mmsamantics.models.reference_sources.sam3_exemplar_tokens import SAM3ExemplarTokens
from mmsamantics.models.sam.sam3_prompt_decoder import SAM3PromptDecoder
from mmsamantics.probing.sam3_probe_backbone import SAM3ProbeBackbone
from mmsamantics_toy.pretraining.contrastive_pe import (TEXT_PREFIX, VISION_PREFIX,
                                                        caption_words, clip_loss,
                                                        image_caption, pretrain_toy_sam3_pe,
                                                        write_caption_bpe)
from mmsamantics_toy.pretraining.promptable_sam import dice_loss, focal_loss
from mmsamantics_toy.pretraining.promptable_sam3 import best_of_multimask_loss, pretrain_toy_sam3

NAMES = ['red circle', 'blue star', 'red circle', 'green square', 'red circle']


def _stages(root: str, out_dir, seed: int = 0) -> tuple:
    ann, img = f'{root}/annotations/instances_train.json', f'{root}/train'
    pe, out = str(out_dir / 'sam3_toy_pe.pth'), str(out_dir / 'sam3_toy.pth')
    pretrain_toy_sam3_pe(ann, img, pe, epochs=2, batch_size=2, max_images=4, seed=seed)
    pretrain_toy_sam3(ann, img, pe, out, epochs=1, batch_size=2, max_images=2, seed=seed)
    return pe, out


@pytest.fixture(scope='module')
def stages(toy_root, tmp_path_factory):
    return _stages(toy_root, tmp_path_factory.mktemp('sam3_toy'))


def test_captions_are_counted_phrases():
    assert image_caption(NAMES) == 'three red circles, a blue star and a green square'
    assert image_caption(['blue star']) == 'a blue star'
    assert image_caption(['blue star', 'blue star']) == 'two blue stars'
    # the phrases shuffled by the generator, the words unchanged
    assert (image_caption(NAMES, np.random.default_rng(0))
            == 'a green square, three red circles and a blue star')
    with pytest.raises(ValueError, match='no word'):
        image_caption(['red star'] * 11)


def test_caption_vocabulary_makes_one_token_per_word(tmp_path):
    from sam3.model.tokenizer_ve import SimpleTokenizer
    names = [f'{c} {s}' for c in ('red', 'green', 'blue')
             for s in ('circle', 'square', 'triangle', 'star')]
    words = caption_words(names)
    tok = SimpleTokenizer(bpe_path=write_caption_bpe(str(tmp_path / 'bpe.txt.gz'), words))
    assert all(len(tok.encode(w)) == 1 for w in words)
    six = image_caption(sum(([n] * (i + 1) for i, n in enumerate(names[:6])), []))
    assert len(tok.encode(six)) == 6 * 3 + 5  # 6 phrases, 4 commas and an "and"


def test_clip_loss_equals_a_reference_computation():
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    txt[:3] = img[:3] + 0.01  # pairs 0..2 retrieve each other, 3..4 are random
    scale = torch.tensor(2.0)
    loss, acc = clip_loss(img, txt, scale)
    sim = np.exp(2.0) * np.array([[float(F.cosine_similarity(a, b, dim=0)) for b in txt]
                                  for a in img])
    i2t = np.mean([np.log(np.exp(r).sum()) - r[i] for i, r in enumerate(sim)])
    t2i = np.mean([np.log(np.exp(c).sum()) - c[i] for i, c in enumerate(sim.T)])
    assert float(loss) == pytest.approx((i2t + t2i) / 2, rel=1e-5)
    hits = np.mean(sim.argmax(1) == np.arange(5)) + np.mean(sim.argmax(0) == np.arange(5))
    assert float(acc) == pytest.approx(hits / 2) and 0.6 <= hits / 2 < 1


def test_checkpoints_load_strictly_where_sam3_is_read(stages):
    pe, out = stages
    # stage 1: the vision backbone for the probe (no SAM 2 neck yet) and the text tower
    state = torch.load(pe)
    probe = SAM3ProbeBackbone(preset='toy', checkpoint=pe)
    assert torch.equal(probe.encoder.vision_backbone.trunk.patch_embed.proj.weight,
                       state[VISION_PREFIX + 'trunk.patch_embed.proj.weight'])
    assert any(k.startswith(TEXT_PREFIX) for k in state)
    # stage 2: every SAM 3 consumer of the released layout, strictly
    enc = SAM3ImageEncoder(preset='toy', checkpoint=out, embedding='interactive')
    dec = SAM3PromptDecoder(preset='toy', checkpoint=out)
    SAM3ExemplarTokens(preset='toy', checkpoint=out)
    SAM3ProbeBackbone(preset='toy', checkpoint=out)
    low, iou = dec.predict_masks(enc(torch.zeros(1, 3, 224, 224))[-1],
                                 torch.tensor([[10., 20., 90., 120.]]))
    assert low.shape == (1, 1, 64, 64) and iou.shape == (1, 1)


def test_language_backbone_fits_the_toy_sam3_image(stages, tmp_path):
    from mmsamantics.models.sam3.sam3_presets import build_sam3_image
    from mmsamantics.utils.checkpoint import load_strict
    pe, out = stages
    bpe = pe.replace('_pe.pth', '_pe_bpe.txt.gz')
    model = build_sam3_image('toy', bpe)
    load_strict(model.backbone.language_backbone, torch.load(out),
                TEXT_PREFIX, source=out)


def test_stage_2_keeps_stage_1_and_trains_the_mask_path(stages):
    """Default trunk_lr_mult = 0: trunk, detector neck and text tower bit-identical."""
    pe, out = stages
    a, b = torch.load(pe), torch.load(out)
    frozen = [k for k in a if k.startswith((VISION_PREFIX + 'trunk.', VISION_PREFIX + 'convs.',
                                            TEXT_PREFIX))]
    assert frozen and all(torch.equal(a[k], b[k]) for k in frozen)
    assert not any(k.startswith('contrastive_head.') for k in b)
    # the SAM 2 neck started as a copy of convs and was trained
    w = 'sam2_convs.2.conv_3x3.weight'
    assert not torch.equal(b[VISION_PREFIX + w], a[VISION_PREFIX + w.replace('sam2_', '')])


def test_trunk_lr_mult_fine_tunes_the_trunk_only(stages, toy_root, tmp_path):
    """trunk_lr_mult > 0 moves the trunk (the stand-in for SAM 3's detector stages); the
    detector's neck and the text tower keep stage 1's weights; a repeat is bit-identical."""
    pe, _ = stages
    ann, img = f'{toy_root}/annotations/instances_train.json', f'{toy_root}/train'
    outs = [str(tmp_path / f'tuned{i}.pth') for i in range(2)]
    for out in outs:
        pretrain_toy_sam3(ann, img, pe, out, epochs=1, batch_size=2, max_images=2,
                          trunk_lr_mult=0.1)
    a, b, c = torch.load(pe), torch.load(outs[0]), torch.load(outs[1])
    kept = [k for k in a if k.startswith((VISION_PREFIX + 'convs.', TEXT_PREFIX))]
    assert kept and all(torch.equal(a[k], b[k]) for k in kept)
    trunk = [k for k in a if k.startswith(VISION_PREFIX + 'trunk.')]
    assert any(not torch.equal(a[k], b[k]) for k in trunk)
    assert b.keys() == c.keys() and all(torch.equal(b[k], c[k]) for k in b)
    with pytest.raises(ValueError, match='trunk_lr_mult'):
        pretrain_toy_sam3(ann, img, pe, outs[0], epochs=1, max_images=2, trunk_lr_mult=-1)


def test_neck_lr_mult_0_keeps_the_stage_1_neck_copy(stages, toy_root, tmp_path):
    """neck_lr_mult = 0: the second neck is the stage-1 detector neck's copy, bit for bit
    (the default, 0.1, trains it: test above); a negative value is refused."""
    pe, _ = stages
    ann, img = f'{toy_root}/annotations/instances_train.json', f'{toy_root}/train'
    out = str(tmp_path / 'neck0.pth')
    pretrain_toy_sam3(ann, img, pe, out, epochs=1, batch_size=2, max_images=2, neck_lr_mult=0)
    a, b = torch.load(pe), torch.load(out)
    neck = [k for k in b if k.startswith(VISION_PREFIX + 'sam2_convs.')]
    assert neck and all(torch.equal(b[k], a[k.replace('sam2_convs.', 'convs.')]) for k in neck)
    with pytest.raises(ValueError, match='neck_lr_mult'):
        pretrain_toy_sam3(ann, img, pe, out, epochs=1, max_images=2, neck_lr_mult=-1)


def test_best_of_multimask_loss_supervises_the_best_output_only():
    """An ambiguous prompt's loss: the lowest 20 * focal + dice of K outputs, plus the IoU
    head's MSE on all K; no gradient reaches the other outputs' logits."""
    g = torch.Generator().manual_seed(0)
    masks = torch.zeros(2, 8, 8)
    masks[0, 2:6, 2:6], masks[1, :4] = 1, 1
    low = torch.randn(2, 3, 8, 8, generator=g)
    low[0, 2] = masks[0] * 8 - 4  # instance 0: output 2 is right; instance 1: output 0 is
    low[1, 0] = masks[1] * 8 - 4
    low.requires_grad_(True)
    iou_pred = torch.rand(2, 3, generator=g)
    ious = []
    loss = best_of_multimask_loss(low, iou_pred, masks, 8, ious)
    per = torch.stack([20 * focal_loss(low[:, k], masks) + dice_loss(low[:, k], masks)
                       for k in range(3)], 1)
    iou = torch.stack([((low[:, k] > 0) & (masks > 0)).flatten(1).sum(1)
                       / ((low[:, k] > 0) | (masks > 0)).flatten(1).sum(1) for k in range(3)], 1)
    expected = (per[[0, 1], [2, 0]] + ((iou_pred - iou) ** 2).mean(1)).mean()
    assert torch.allclose(loss, expected) and ious == [1.0, 1.0]
    loss.backward()
    assert low.grad[0, 2].abs().sum() > 0 and low.grad[1, 0].abs().sum() > 0
    assert low.grad[0, :2].abs().sum() == 0 and low.grad[1, 1:].abs().sum() == 0


def test_stage_2_clips_the_gradient_of_every_trained_weight(stages, toy_root, tmp_path,
                                                            monkeypatch):
    """SAM 2's gradient clipping (max norm 0.1 by default) on the mask path's weights at
    every step; grad_clip = 0 turns it off; a negative value is refused."""
    pe, _ = stages
    ann, img = f'{toy_root}/annotations/instances_train.json', f'{toy_root}/train'
    calls = []
    clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, 'clip_grad_norm_',
                        lambda params, norm: calls.append((len(params), norm))
                        or clip(params, norm))
    out = str(tmp_path / 'clipped.pth')
    pretrain_toy_sam3(ann, img, pe, out, epochs=2, batch_size=2, max_images=4)
    trained = SAM3PromptDecoder(preset='toy')
    n_dec = len(list(trained.parameters()))
    n_neck = sum(1 for k in torch.load(out) if k.startswith(VISION_PREFIX + 'sam2_convs.'))
    assert calls == [(n_dec + n_neck, 0.1)] * 4  # 2 epochs x 2 batches
    calls.clear()
    pretrain_toy_sam3(ann, img, pe, out, epochs=1, batch_size=2, max_images=2, grad_clip=0)
    assert calls == []
    with pytest.raises(ValueError, match='grad_clip'):
        pretrain_toy_sam3(ann, img, pe, out, epochs=1, max_images=2, grad_clip=-1)


def test_fixed_seed_gives_identical_weights(stages, toy_root, tmp_path):
    for first, second in zip(stages, _stages(toy_root, tmp_path)):
        a, b = torch.load(first), torch.load(second)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_tool_refuses_a_missing_toy_world_or_stage_1(toy_root, tmp_path):
    tool = load_tool('tools/misc/pretrain_toy_sam3.py')
    with pytest.raises(SystemExit, match='make_toy_world'):
        tool.main([str(tmp_path / 'nowhere'), '--out', str(tmp_path / 'x.pth')])
    with pytest.raises(SystemExit, match='x_pe.pth, which does not exist'):
        tool.main([toy_root, '--out', str(tmp_path / 'x.pth'), '--pe-epochs', '0'])
    with pytest.raises(SystemExit, match='elsewhere.pth, which does not exist'):
        tool.main([toy_root, '--out', str(tmp_path / 'x.pth'), '--pe-epochs', '0',
                   '--pe', str(tmp_path / 'elsewhere.pth')])


def test_tool_reads_the_stage_1_file_named_by_pe(stages, toy_root, tmp_path, monkeypatch):
    """--pe-epochs 0 --pe FILE: stage 2 starts from FILE whatever --out is called."""
    tool = load_tool('tools/misc/pretrain_toy_sam3.py')
    seen = {}

    def fake_stage_2(ann, img_dir, pe, out, **kw):
        seen.update(pe=pe, out=out, **kw)
        return dict(first_iou=0.0, mean_iou=0.0, images=0, seconds=0.0)
    monkeypatch.setattr(tool, 'pretrain_toy_sam3', fake_stage_2)
    monkeypatch.setattr(tool, 'box_prompt_iou', lambda *a, **k: 0.0)
    out = str(tmp_path / 'tuned.pth')
    tool.main([toy_root, '--out', out, '--pe-epochs', '0', '--pe', stages[0],
               '--trunk-lr-mult', '0.1', '--neck-lr-mult', '0.2', '--grad-clip', '0'])
    assert seen['pe'] == stages[0] and seen['out'] == out
    assert (seen['trunk_lr_mult'], seen['neck_lr_mult'], seen['grad_clip']) == (0.1, 0.2, 0)


def test_box_prompt_iou_scores_the_ground_truth_as_one(stages, toy_root, monkeypatch):
    """The IoU of the configs' mask path, checked on a decoder that returns the truth."""
    from mmsamantics_toy.pretraining import promptable_sam3
    _, out = stages
    ann, img = f'{toy_root}/annotations/instances_val.json', f'{toy_root}/val'
    real = promptable_sam3.box_prompt_iou(out, ann, img, max_images=2)
    data = promptable_sam3.load_prompt_instances(ann, img, 224, 2, *promptable_sam3._NORM)
    truth = iter([m[:, None].float() * 20 - 10 for _, b, m in data if len(b)])
    monkeypatch.setattr(SAM3PromptDecoder, 'predict_masks',
                        lambda self, emb, boxes: (next(truth), None))
    assert promptable_sam3.box_prompt_iou(out, ann, img, max_images=2) == 1.0
    assert 0 <= real < 1.0


def test_class_ids_cannot_reach_the_promptable_stage(stages, toy_root, tmp_path):
    """Stage 2 with scrambled class ids -> bit-identical weights."""
    pe, out = stages
    scrambled = scrambled_class_ids(f'{toy_root}/annotations/instances_train.json', tmp_path)
    again = str(tmp_path / 'again.pth')
    pretrain_toy_sam3(str(scrambled), f'{toy_root}/train', pe, again, epochs=1, batch_size=2,
                      max_images=2, seed=0)
    a, b = torch.load(out), torch.load(again)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
