"""SAM 2 backbone + decoder: equal to sam2's own SAM2Base / SAM2ImagePredictor for the same
weights, frozen, strictly loaded; and a full InSAM-DETR built from the SAM 2 toy config."""
import inspect
import os.path as osp

import numpy as np
import pytest
import sam2
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.structures import InstanceData
from omegaconf import OmegaConf
from sam2.modeling.backbones.hieradet import Hiera
from sam2.modeling.backbones.image_encoder import FpnNeck, ImageEncoder
from sam2.modeling.position_encoding import PositionEmbeddingSine
from sam2.modeling.sam2_base import SAM2Base
from sam2.sam2_image_predictor import SAM2ImagePredictor

from mmdet.registry import DATASETS, MODELS
from mmsamantics.models import SAM2ImageEncoder, SAM2PromptDecoder, SAMBoxPromptMaskHead
from mmsamantics.models.sam import SAM2_PRESETS, get_sam2_preset
from mmsamantics.utils import MissingResourceError
from helpers import REPO, toy_overrides

TOY_SAM2 = osp.join(REPO, 'configs', 'insam_detr', 'insam-detr_sam2-tiny_1xb4-12e_toy-world.py')
COCO_SAM2 = osp.join(REPO, 'configs', 'insam_detr', 'insam-detr_sam2-hiera-b+_16xb3-50e_coco.py')
# SAM2ImagePredictor's transforms use torch.jit.script (sam2's code, not ours)
pytestmark = pytest.mark.filterwarnings('ignore:`torch.jit.script` is deprecated:FutureWarning')


def _sam2base(p: dict) -> SAM2Base:
    """sam2's own single-image model for preset ``p``, wired as the sam2.1 yaml configs."""
    trunk = Hiera(embed_dim=p['embed_dim'], num_heads=p['num_heads'], stages=p['stages'],
                  global_att_blocks=p['global_att_blocks'], window_spec=p['window_spec'],
                  window_pos_embed_bkg_spatial_size=p['window_pos_embed_bkg_spatial_size'])
    neck = FpnNeck(PositionEmbeddingSine(p['d_model']), d_model=p['d_model'],
                   backbone_channel_list=list(p['backbone_channel_list']),
                   fpn_top_down_levels=list(p['fpn_top_down_levels']),
                   fpn_interp_model=p['fpn_interp_model'])
    extra = {k: p[k] for k in p if k.startswith('dynamic_multimask')}
    return SAM2Base(
        ImageEncoder(trunk, neck, scalp=p['scalp']), None, None, image_size=p['image_size'],
        directly_add_no_mem_embed=p['directly_add_no_mem_embed'],
        use_high_res_features_in_sam=p['use_high_res_features'],
        iou_prediction_use_sigmoid=p['iou_prediction_use_sigmoid'],
        pred_obj_scores=p['pred_obj_scores'], pred_obj_scores_mlp=p['pred_obj_scores_mlp'],
        use_multimask_token_for_obj_ptr=p['use_multimask_token_for_obj_ptr'],
        sam_mask_decoder_extra_args=extra).eval()


@pytest.fixture(scope='module')
def ref(tmp_path_factory):
    """Our modules loaded from a full SAM2Base state dict (official layout: {'model': ...})."""
    torch.manual_seed(0)
    base = _sam2base(get_sam2_preset('tiny'))
    path = str(tmp_path_factory.mktemp('sam2') / 'sam2_tiny.pt')
    torch.save({'model': base.state_dict()}, path)
    enc = SAM2ImageEncoder(preset='tiny', checkpoint=path, out_levels=(0, 1, 2, 3))
    dec = SAM2PromptDecoder(preset='tiny', checkpoint=path)
    pred = SAM2ImagePredictor(base)
    pred._bb_feat_sizes = [(64, 64), (32, 32), (16, 16)]  # hard-coded for 1024 px in sam2
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 255, size=(256, 256, 3), dtype=np.uint8) for _ in range(2)]
    x = torch.stack([pred._transforms(im) for im in imgs])  # sam2's own preprocessing
    feats = []
    for im in imgs:
        pred.set_image(im)
        feats.append(pred._features)
    return dict(base=base, enc=enc, dec=dec, pred=pred, imgs=imgs, x=x, feats=feats,
                path=path, out=enc(x))


def test_real_presets_match_sam2_configs():
    hiera_defaults = {k: v.default for k, v in inspect.signature(Hiera).parameters.items()}
    for name, size in [('hiera_t', 't'), ('hiera_s', 's'), ('hiera_b+', 'b+'), ('hiera_l', 'l')]:
        yaml = f'sam2.1_hiera_{size}.yaml'
        m = OmegaConf.load(osp.join(osp.dirname(sam2.__file__), 'configs', 'sam2.1', yaml)).model
        trunk, neck, p = m.image_encoder.trunk, m.image_encoder.neck, SAM2_PRESETS[name]
        for key in ('embed_dim', 'num_heads', 'stages', 'global_att_blocks', 'window_spec',
                    'window_pos_embed_bkg_spatial_size'):
            assert tuple(np.atleast_1d(trunk.get(key, hiera_defaults[key]))) == \
                tuple(np.atleast_1d(p[key])), (name, key)
        assert list(neck.backbone_channel_list) == list(p['backbone_channel_list'])
        assert list(neck.fpn_top_down_levels) == list(p['fpn_top_down_levels'])
        assert (neck.d_model, neck.fpn_interp_model, m.image_encoder.scalp, m.image_size) == \
            (p['d_model'], p['fpn_interp_model'], p['scalp'], p['image_size'])
        for ours, theirs in [('directly_add_no_mem_embed', 'directly_add_no_mem_embed'),
                             ('use_high_res_features', 'use_high_res_features_in_sam'),
                             ('iou_prediction_use_sigmoid', 'iou_prediction_use_sigmoid'),
                             ('pred_obj_scores', 'pred_obj_scores'),
                             ('pred_obj_scores_mlp', 'pred_obj_scores_mlp'),
                             ('use_multimask_token_for_obj_ptr',
                              'use_multimask_token_for_obj_ptr')]:
            assert p[ours] == m[theirs], (name, ours)
    with pytest.raises(KeyError, match='unknown SAM 2 preset'):
        get_sam2_preset('hiera_x')


def test_shapes_strides_and_frozen(ref):
    enc, out = ref['enc'], ref['out']
    *levels, (image_embed, s0, s1) = out
    # FPN levels 0..3 at strides 4, 8, 16, 32, all d_model = 64 channels
    assert [tuple(f.shape) for f in levels] == [(2, 64, 256 // s, 256 // s) for s in (4, 8, 16, 32)]
    assert enc.out_channels == [64] * 5
    assert (image_embed.shape, s0.shape, s1.shape) == ((2, 64, 16, 16), (2, 64, 64, 64),
                                                        (2, 64, 32, 32))
    assert s0 is levels[0] and s1 is levels[1]  # raw FPN features: the decoder projects them
    torch.testing.assert_close(image_embed, levels[2] + enc.no_mem_embed.view(1, -1, 1, 1))
    default = SAM2ImageEncoder(preset='tiny')
    assert default.out_levels == (1, 2, 3) and default.out_channels == [64] * 4
    assert not any(p.requires_grad for p in enc.parameters()) and not image_embed.requires_grad
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    enc.init_weights()  # the runner calls this: it must not touch SAM 2's weights
    assert all(torch.equal(v, enc.state_dict()[k]) for k, v in before.items())
    enc.train()
    assert not enc.image_encoder.training and not any(m.training for m in enc.modules()
                                                       if m is not enc)
    with pytest.raises(ValueError, match='expects 256x256.*pad_size_divisor=256'):
        enc(torch.zeros(1, 3, 200, 256))
    with pytest.raises(ValueError, match='out_levels'):
        SAM2ImageEncoder(preset='tiny', out_levels=(4,))


def test_embedding_equals_sam2_predictor(ref):
    dec, base = ref['dec'], ref['base']
    image_embed, s0, s1 = ref['out'][-1]
    md = dec.mask_decoder
    for i, f in enumerate(ref['feats']):  # SAM2ImagePredictor.set_image, one image at a time
        torch.testing.assert_close(image_embed[i:i + 1], f['image_embed'], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(md.conv_s0(s0[i:i + 1]), f['high_res_feats'][0],
                                   atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(md.conv_s1(s1[i:i + 1]), f['high_res_feats'][1],
                                   atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # the batched SAM2Base path, + no_mem_embed
        fpn = base.forward_image(ref['x'])['backbone_fpn']
    torch.testing.assert_close(image_embed, fpn[2] + base.no_mem_embed.view(1, -1, 1, 1),
                               atol=1e-5, rtol=1e-5)


def test_predict_masks_and_mask_head_equal_sam2_predictor(ref):
    dec, pred, emb = ref['dec'], ref['pred'], ref['out'][-1]
    boxes = np.array([[20, 30, 200, 250], [150, 10, 250, 120], [0, 0, 255, 255]], np.float32)
    one = tuple(e[1:2] for e in emb)
    low_res, iou = dec.predict_masks(one, torch.from_numpy(boxes))
    assert low_res.shape == (3, 1, 64, 64) and iou.shape == (3, 1)
    pred.set_image(ref['imgs'][1])
    head = SAMBoxPromptMaskHead(decoder=dict(type='SAM2PromptDecoder', preset='tiny'))
    head.decoder = dec
    meta = dict(img_shape=(256, 256), ori_shape=(256, 256), scale_factor=(1.0, 1.0))
    results = [InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0)),
               InstanceData(bboxes=torch.from_numpy(boxes), scores=torch.ones(3))]
    out = head.predict(emb, results, [meta, meta])  # the tuple embedding of a batch of 2
    assert out[0].masks.shape == (0, 256, 256)
    for i, box in enumerate(boxes):
        masks, ref_iou, ref_low = pred.predict(box=box, multimask_output=False)
        torch.testing.assert_close(low_res[i].clamp(-32, 32), torch.from_numpy(ref_low),
                                   atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(iou[i], torch.from_numpy(ref_iou), atol=1e-5, rtol=1e-5)
        assert (out[1].masks[i].numpy() == masks[0]).mean() > 0.9999


def test_mask_tokens_equal_sam2_mask_decoder(ref):
    dec, base, emb = ref['dec'], ref['base'], ref['out'][-1]
    boxes = torch.tensor([[20., 30., 200., 250.], [150., 10., 250., 120.]])
    tokens = dec.mask_tokens(emb, boxes)  # one box per image
    assert tokens.shape == (2, dec.num_mask_tokens, dec.embed_dim) == (2, 4, 64)
    labels = torch.tensor([[2, 3]] * 2, dtype=torch.int)  # the predictor's box encoding
    with torch.no_grad():
        sparse, dense = base.sam_prompt_encoder(points=(boxes.reshape(-1, 2, 2), labels),
                                                boxes=None, masks=None)
        feats = ref['feats']
        _, _, ref_tokens, _ = base.sam_mask_decoder.predict_masks(
            image_embeddings=torch.cat([f['image_embed'] for f in feats]),
            image_pe=base.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
            repeat_image=False,
            high_res_features=[torch.cat([f['high_res_feats'][j] for f in feats])
                               for j in range(2)])
    torch.testing.assert_close(tokens, ref_tokens, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match='2 embeddings for 1 boxes'):
        dec.mask_tokens(emb, boxes[:1])


def test_checkpoint_loading_is_strict_and_readable(ref, tmp_path):
    state = torch.load(ref['path'], weights_only=True)['model']
    broken = dict(state)
    broken.pop('image_encoder.neck.convs.0.conv.weight')
    broken['image_encoder.extra.weight'] = torch.zeros(1)
    torch.save({'model': broken}, tmp_path / 'broken.pt')
    with pytest.raises(RuntimeError, match=r'missing keys: image_encoder\.neck\.convs\.0\.conv'
                                           r'\.weight.*unexpected keys: image_encoder\.extra'):
        SAM2ImageEncoder(preset='tiny', checkpoint=str(tmp_path / 'broken.pt'))
    no_mem = {k: v for k, v in state.items() if k != 'no_mem_embed'}
    torch.save({'model': no_mem}, tmp_path / 'no_mem.pt')
    with pytest.raises(RuntimeError, match='missing keys: no_mem_embed'):
        SAM2ImageEncoder(preset='tiny', checkpoint=str(tmp_path / 'no_mem.pt'))
    no_conv = {k: v for k, v in state.items() if k != 'sam_mask_decoder.conv_s0.weight'}
    torch.save({'model': no_conv}, tmp_path / 'no_conv.pt')
    with pytest.raises(RuntimeError, match=r"prefix 'sam_mask_decoder\.'.*missing keys: "
                                           r'conv_s0\.weight'):
        SAM2PromptDecoder(preset='tiny', checkpoint=str(tmp_path / 'no_conv.pt'))
    for cls in (SAM2ImageEncoder, SAM2PromptDecoder):  # fails before building the 70M model
        with pytest.raises(MissingResourceError, match='missing.pt.*sam2.1_hiera_base_plus.pt'):
            cls(preset='hiera_b+', checkpoint=str(tmp_path / 'missing.pt'))


def test_coco_config_wires_sam2_b_plus():
    m = Config.fromfile(COCO_SAM2).model
    assert m.backbone.type == 'SAM2ImageEncoder' and m.backbone.preset == 'hiera_b+'
    assert m.mask_head.decoder.type == 'SAM2PromptDecoder'
    assert m.backbone.checkpoint == m.mask_head.decoder.checkpoint == \
        'checkpoints/sam2.1_hiera_base_plus.pt'
    assert len(m.neck.in_channels) == len(m.backbone.out_levels) and m.neck.num_outs == 4
    from mmsamantics.models.detectors.insam_detr_legacy import probe_decoder_width
    from mmsamantics.models.reference_sources import SAMMaskTokens
    assert probe_decoder_width(m.mask_head, [SAMMaskTokens()], []) == (4, 256)  # derived


def test_insam_detr_from_sam2_toy_config(toy_root):
    cfg = Config.fromfile(TOY_SAM2)
    cfg.merge_from_dict(toy_overrides(toy_root))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert isinstance(model.backbone, SAM2ImageEncoder)
    assert isinstance(model.mask_head.decoder, SAM2PromptDecoder)
    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.test_dataloader.dataset)

    model.train()
    data = model.data_preprocessor(pseudo_collate([train[0], train[1]]), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.token_merge.mlp[0].weight.grad is not None
    assert all(p.grad is None for p in model.backbone.parameters())

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
