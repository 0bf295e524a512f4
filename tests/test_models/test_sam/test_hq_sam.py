"""HQ-SAM option: backbone interm feature + HQ decoder equal to segment_anything_hq's own model
for the same weights, strictly loaded; and a full InSAM-DETR built from the HQ toy config."""
import os.path as osp
from functools import partial

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.structures import InstanceData
from torch import nn

from mmdet.registry import DATASETS, MODELS
from mmsamantics.models import (HQSAMPromptDecoder, SAMBoxPromptMaskHead, SAMImageEncoder,
                                TokenMergeMLP)
from mmsamantics.models.sam import get_preset
from mmsamantics.utils import MissingResourceError
from helpers import REPO, toy_overrides

TOY_HQ = osp.join(REPO, 'configs', 'insam_detr', 'insam-detr_hq-sam-tiny_1xb4-12e_toy-world.py')
COCO_HQ = osp.join(REPO, 'configs', 'insam_detr', 'insam-detr_hq-sam-vit-b_16xb3-50e_coco.py')
# segment_anything_hq re-registers timm's TinyViT models on import (its code, not ours)
pytestmark = pytest.mark.filterwarnings('ignore:Overwriting tiny_vit:UserWarning',
                                        'ignore:Importing from timm.models:FutureWarning')
BOXES = np.array([[20, 30, 200, 250], [150, 10, 250, 120], [0, 0, 255, 255]], np.float32)


def _hq_sam(p: dict) -> nn.Module:
    """segment_anything_hq's own Sam for preset ``p``, wired as its ``_build_sam``."""
    from segment_anything_hq.modeling import (ImageEncoderViT, MaskDecoderHQ, PromptEncoder,
                                              Sam, TwoWayTransformer)
    side = p['img_size'] // p['patch_size']
    d = p['prompt_embed_dim']
    return Sam(
        image_encoder=ImageEncoderViT(
            depth=p['depth'], embed_dim=p['embed_dim'], img_size=p['img_size'], mlp_ratio=4,
            norm_layer=partial(nn.LayerNorm, eps=1e-6), num_heads=p['num_heads'],
            patch_size=p['patch_size'], qkv_bias=True, use_rel_pos=True,
            global_attn_indexes=p['global_attn_indexes'], window_size=p['window_size'],
            out_chans=d),
        prompt_encoder=PromptEncoder(embed_dim=d, image_embedding_size=(side, side),
                                     input_image_size=(p['img_size'],) * 2, mask_in_chans=16),
        mask_decoder=MaskDecoderHQ(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=p['decoder_depth'], embedding_dim=d,
                                          mlp_dim=p['decoder_mlp_dim'],
                                          num_heads=p['decoder_num_heads']),
            transformer_dim=d, iou_head_depth=3, iou_head_hidden_dim=p['iou_head_hidden_dim'],
            vit_dim=p['embed_dim'])).eval()


@pytest.fixture(scope='module')
def ref(tmp_path_factory):
    """Our modules loaded from a full HQ-SAM state dict (the official checkpoints' layout)."""
    from segment_anything_hq import SamPredictor
    torch.manual_seed(0)
    base = _hq_sam(get_preset('tiny'))
    with torch.no_grad():  # random init leaves some parts at zero: make every weight count
        for prm in base.mask_decoder.parameters():
            prm.add_(torch.randn_like(prm) * 0.02)
    path = str(tmp_path_factory.mktemp('hq_sam') / 'sam_hq_tiny.pth')
    torch.save(base.state_dict(), path)
    enc = SAMImageEncoder(preset='tiny', checkpoint=path, hq_interm=True)
    dec = HQSAMPromptDecoder(preset='tiny', checkpoint=path)
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, size=(256, 256, 3), dtype=np.uint8) for _ in range(2)]
    x = torch.stack([base.preprocess(torch.from_numpy(im).permute(2, 0, 1).float())
                     for im in imgs])  # HQ-SAM's own normalisation (+ no padding at 256)
    return dict(base=base, enc=enc, dec=dec, pred=SamPredictor(base), imgs=imgs, x=x,
                path=path, out=enc(x))


def test_interm_and_embedding_equal_hq_image_encoder(ref):
    *levels, (emb, interm) = ref['out']
    with torch.no_grad():
        ref_emb, ref_interm = ref['base'].image_encoder(ref['x'])
    assert interm.shape == (2, 16, 16, 96)  # channels-last, as HQ-SAM
    # fused SDPA attention vs HQ-SAM's explicit matmuls: equal to float rounding
    torch.testing.assert_close(interm, ref_interm[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(emb, ref_emb, atol=1e-5, rtol=1e-5)
    # the first global block (1) is also level 0; the default output stays plain SAM's
    torch.testing.assert_close(levels[0], interm.permute(0, 3, 1, 2))
    plain = SAMImageEncoder(preset='tiny', checkpoint=ref['path'])
    *plain_levels, plain_emb = plain(ref['x'])
    assert isinstance(plain_emb, torch.Tensor) and torch.equal(plain_emb, emb)
    assert all(torch.equal(a, b) for a, b in zip(plain_levels, levels))
    assert not interm.requires_grad and not any(p.requires_grad for p in ref['enc'].parameters())
    with pytest.raises(ValueError, match='hq_interm needs a global-attention block'):
        SAMImageEncoder(preset='tiny', hq_interm=True,
                        preset_overrides=dict(global_attn_indexes=()))


@pytest.mark.parametrize('hq_token_only', [False, True])
def test_predict_masks_and_mask_head_equal_hq_predictor(ref, hq_token_only):
    dec, pred, emb = ref['dec'], ref['pred'], ref['out'][-1]
    dec.hq_token_only = hq_token_only
    try:
        one = tuple(e[1:2] for e in emb)
        low_res, iou = dec.predict_masks(one, torch.from_numpy(BOXES))
        assert low_res.shape == (3, 1, 64, 64) and iou.shape == (3, 1)
        head = SAMBoxPromptMaskHead(decoder=dict(type='HQSAMPromptDecoder', preset='tiny'))
        head.decoder = dec
        meta = dict(img_shape=(256, 256), ori_shape=(256, 256), scale_factor=(1.0, 1.0))
        results = [InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0)),
                   InstanceData(bboxes=torch.from_numpy(BOXES), scores=torch.ones(3))]
        out = head.predict(emb, results, [meta, meta])  # the tuple embedding of a batch of 2
    finally:
        dec.hq_token_only = False
    assert out[0].masks.shape == (0, 256, 256)
    pred.set_image(ref['imgs'][1])
    for i, box in enumerate(BOXES):
        masks, ref_iou, ref_low = pred.predict(box=box, multimask_output=False,
                                               hq_token_only=hq_token_only)
        torch.testing.assert_close(low_res[i], torch.from_numpy(ref_low), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(iou[i], torch.from_numpy(ref_iou), atol=1e-5, rtol=1e-5)
        assert (out[1].masks[i].numpy() == masks[0]).mean() > 0.9999
    with pytest.raises(ValueError, match='hq_interm=True'):
        dec.predict_masks(emb[0][:1], torch.from_numpy(BOXES))


def test_mask_tokens_equal_mask_decoder_hq_transformer_output(ref):
    dec, base, pred, emb = ref['dec'], ref['base'], ref['pred'], ref['out'][-1]
    boxes = torch.from_numpy(BOXES[:2])
    tokens = dec.mask_tokens(emb, boxes)  # one box per image
    assert tokens.shape == (2, dec.num_mask_tokens, dec.embed_dim) == (2, 5, 64)
    assert torch.equal(tokens, dec.mask_tokens(emb[0], boxes))  # interm not needed
    seen = []
    hook = base.mask_decoder.transformer.register_forward_hook(
        lambda m, args, out: seen.append(out[0]))
    try:
        for i, box in enumerate(BOXES[:2]):  # HQ-SAM's predictor, image i with box i
            pred.set_image(ref['imgs'][i])
            pred.predict(box=box, multimask_output=False)
    finally:
        hook.remove()
    # MaskDecoderHQ's sequence: IoU token, 4 mask tokens, HQ token, prompt tokens
    ref_tokens = torch.cat([hs[:, 1:6] for hs in seen])
    torch.testing.assert_close(tokens, ref_tokens, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match='2 embeddings for 1 boxes'):
        dec.mask_tokens(emb, boxes[:1])


def test_checkpoint_loading_is_strict_and_readable(ref, tmp_path):
    state = torch.load(ref['path'], weights_only=True)
    broken = dict(state)
    broken.pop('mask_decoder.hf_token.weight')
    broken['mask_decoder.extra.weight'] = torch.zeros(1)
    torch.save(broken, tmp_path / 'broken.pth')
    with pytest.raises(RuntimeError, match=r"prefix 'mask_decoder\.'.*missing keys: "
                                           r'hf_token\.weight.*unexpected keys: extra\.weight'):
        HQSAMPromptDecoder(preset='tiny', checkpoint=str(tmp_path / 'broken.pth'))
    # a plain SAM checkpoint: every HQ key missing, and the error says what to use instead
    plain = {k: v for k, v in state.items()
             if not k.startswith(tuple(f'mask_decoder.{h}' for h in (
                 'hf_token', 'hf_mlp', 'compress_vit_feat', 'embedding_encoder',
                 'embedding_maskfeature')))}
    torch.save(plain, tmp_path / 'sam_plain.pth')
    with pytest.raises(RuntimeError, match=r'missing keys: compress_vit_feat.*needs an HQ-SAM '
                                           r'checkpoint'):
        HQSAMPromptDecoder(preset='tiny', checkpoint=str(tmp_path / 'sam_plain.pth'))
    # ... while the encoder takes the image_encoder.* keys of either checkpoint strictly
    SAMImageEncoder(preset='tiny', checkpoint=str(tmp_path / 'sam_plain.pth'), hq_interm=True)
    no_prompt = {k: v for k, v in state.items() if k != 'prompt_encoder.point_embeddings.0.weight'}
    torch.save(no_prompt, tmp_path / 'no_prompt.pth')
    with pytest.raises(RuntimeError, match=r"prefix 'prompt_encoder\.'.*missing keys: "
                                           r'point_embeddings\.0\.weight'):
        HQSAMPromptDecoder(preset='tiny', checkpoint=str(tmp_path / 'no_prompt.pth'))
    enc_broken = dict(state, **{'image_encoder.extra.weight': torch.zeros(1)})
    torch.save(enc_broken, tmp_path / 'enc_broken.pth')
    with pytest.raises(RuntimeError, match=r'unexpected keys: extra\.weight'):
        SAMImageEncoder(preset='tiny', checkpoint=str(tmp_path / 'enc_broken.pth'),
                        hq_interm=True)
    with pytest.raises(MissingResourceError, match='missing.pth.*sam_hq_vit_b.pth'):
        HQSAMPromptDecoder(preset='vit_b', checkpoint=str(tmp_path / 'missing.pth'))
    with pytest.raises(MissingResourceError, match='HQ-SAM has no released weights'):
        SAMImageEncoder(preset='tiny', checkpoint=str(tmp_path / 'missing.pth'),
                        hq_interm=True)


def test_token_merge_of_the_paper_and_coco_config():
    assert sum(p.numel() for p in TokenMergeMLP(num_tokens=5, token_dim=256).parameters()) \
        == 2_623_744
    m = Config.fromfile(COCO_HQ).model
    assert m.backbone.type == 'SAMImageEncoder' and m.backbone.hq_interm
    assert m.mask_head.decoder.type == 'HQSAMPromptDecoder'
    assert m.backbone.checkpoint == m.mask_head.decoder.checkpoint == \
        'checkpoints/sam_hq_vit_b.pth'
    # the token-merge input is derived from the sources: SAM's 4 mask tokens + the HQ token
    from mmsamantics.models.detectors.insam_detr_legacy import probe_decoder_width
    from mmsamantics.models.reference_sources import SAMMaskTokens
    assert 'num_tokens' not in m.token_merge
    assert probe_decoder_width(m.mask_head, [SAMMaskTokens()], []) == (5, 256)
    assert m.token_merge.hidden_dims == (1024, 1024) and m.token_merge.out_dim == 256


def test_insam_detr_from_hq_toy_config(toy_root):
    cfg = Config.fromfile(TOY_HQ)
    cfg.merge_from_dict(toy_overrides(toy_root))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    frozen = {k: v.clone() for k, v in model.state_dict().items()
              if k.startswith(('backbone.', 'mask_head.decoder.'))}
    model.init_weights()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in frozen.items())
    assert isinstance(model.mask_head.decoder, HQSAMPromptDecoder)
    assert model.token_merge.num_tokens == model.mask_head.decoder.num_mask_tokens == 5
    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.test_dataloader.dataset)

    model.train()
    data = model.data_preprocessor(pseudo_collate([train[0], train[1]]), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.token_merge.mlp[0].weight.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in
               [*model.backbone.parameters(), *model.mask_head.decoder.parameters()])

    model.eval()
    data = model.data_preprocessor(pseudo_collate([val[0], val[1]]), False)
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])
    for ds in out:
        pred = ds.pred_instances
        assert set(pred.labels.tolist()) <= set(ds.ref_instances.labels.tolist())
        # oracle mode: every (image, class) pair keeps min(max_per_pair=100, queries)
        assert len(pred) == min(100, cfg.model.num_queries) * len(
            set(ds.ref_instances.labels.tolist()))
        assert pred.masks.shape[1:] == ds.ori_shape and pred.masks.dtype == torch.bool
