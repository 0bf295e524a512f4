"""InSAM-DETR on a frozen SAM 3: its box-prompted (SAM 1-task) mask decoder and its exemplar
encoder as a reference source equal sam3's own paths for the same weights (tiny preset),
load strictly from the released ``sam3.pt`` layout, and the toy-world config trains,
predicts, banks its references and serves the inference API like the SAM one."""
import os.path as osp
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import save_checkpoint
from torch import nn

from helpers import REPO, assert_same_predictions, inferencer_vs_pipeline, toy_overrides
from helpers import train_refs, val_images
from sam3_helpers import released_layout
from mmdet.registry import DATASETS, MODELS
from mmdet.structures.bbox import bbox_xyxy_to_cxcywh
from mmsamantics.models import SAM3ImageEncoder
from mmsamantics.models.reference_sources import ReferenceView, SAM3ExemplarTokens
from mmsamantics.models.sam import SAM3PromptDecoder
from mmsamantics.models.sam3.cpu_compat import pinning_optional
from mmsamantics.utils import MissingResourceError

TOY_SAM3 = osp.join(REPO, 'configs', 'insam_detr', 'insam-detr_sam3-toy_1xb4-12e_toy-world.py')
BOXES = torch.tensor([[10., 12., 60., 90.], [40., 5., 108., 70.]])  # input pixels, S = 112


@pytest.fixture(scope='module')
def ref(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('sam3') / 'sam3_tiny.pt')
    parts = released_layout('tiny', path)
    torch.manual_seed(1)  # other random weights: only the checkpoint can make them equal
    enc = SAM3ImageEncoder(preset='tiny', checkpoint=path, embedding='interactive')
    dec = SAM3PromptDecoder(preset='tiny', checkpoint=path)
    src = SAM3ExemplarTokens(preset='tiny', checkpoint=path)
    x = torch.randn(2, 3, 112, 112)
    return dict(parts=parts, enc=enc, dec=dec, src=src, x=x, out=enc(x), path=path)


def test_mask_decoder_equals_sam3_interactive_predictor(ref):
    """Low-res logits and IoU of sam3's SAM 1-task predictor (``SAM3InteractiveImagePredictor
    ._predict``, box prompts, single mask) on the features ``Sam3Processor.set_image`` and
    ``Sam3Image.predict_inst`` give it: second neck, conv_s0/conv_s1, + no_mem_embed."""
    from sam3.model.sam1_task_predictor import SAM3InteractiveImagePredictor
    from sam3.model.sam3_tracker_base import Sam3TrackerBase
    from sam3.model.vl_combiner import SAM3VLBackbone
    p, x = ref['parts'], ref['x']
    with torch.no_grad():
        out = SAM3VLBackbone(visual=p['neck'], text=None, scalp=1).forward_image(x)
        out = out['sam2_backbone_out']
        fpn = out['backbone_fpn']
        fpn[0] = p['mask_decoder'].conv_s0(fpn[0])
        fpn[1] = p['mask_decoder'].conv_s1(fpn[1])
        sizes = [tuple(f.shape[-2:]) for f in fpn]
        _, feats, _, _ = Sam3TrackerBase._prepare_backbone_features(
            SimpleNamespace(num_feature_levels=3), out)
        feats[-1] = feats[-1] + p['no_mem_embed']
        maps = [f.permute(1, 2, 0).view(len(x), -1, *s) for f, s in zip(feats, sizes)]
    holder = nn.Module()
    holder.sam_prompt_encoder, holder.sam_mask_decoder = p['prompt_encoder'], p['mask_decoder']
    holder.image_size = 112
    pred = SAM3InteractiveImagePredictor(holder)
    pred._features = {'image_embed': maps[-1], 'high_res_feats': maps[:-1]}
    pred._is_image_set, pred._orig_hw = True, [(112, 112)] * len(x)
    emb = ref['out'][-1]
    for i in range(len(x)):
        with torch.no_grad():
            _, iou, low = pred._predict(None, None, boxes=BOXES, multimask_output=False,
                                        return_logits=True, img_idx=i)
        ours, our_iou = ref['dec'].predict_masks(tuple(e[i:i + 1] for e in emb), BOXES)
        # equal up to float summation order (their embedding is a permuted, strided view)
        torch.testing.assert_close(ours.clamp(-32, 32), low, rtol=0, atol=1e-6)
        torch.testing.assert_close(our_iou, iou, rtol=0, atol=1e-6)


def test_exemplar_tokens_equal_sam3_geometry_encoder(ref):
    """sam3's own exemplar path (``Sam3Processor.add_geometric_prompt``: a positive box in
    normalised cxcywh appended to the dummy prompt; ``Sam3Image._encode_prompt``: the
    geometry encoder on the detector's ``vision_features`` and their position encoding)."""
    from sam3.model.sam3_image import Sam3Image
    from sam3.model.vl_combiner import SAM3VLBackbone
    p, x, rows = ref['parts'], ref['x'], [1, 0]
    with torch.no_grad():
        out = SAM3VLBackbone(visual=p['neck'], text=None, scalp=1).forward_image(x)
        _, img_feats, img_pos, sizes = Sam3Image._get_img_feats(
            SimpleNamespace(num_feature_levels=1), out, torch.tensor(rows))
        prompt = Sam3Image._get_dummy_prompt(SimpleNamespace(device='cpu'), num_prompts=2)
        prompt.append_boxes(bbox_xyxy_to_cxcywh(BOXES / 112).view(1, 2, 4),
                            torch.ones(1, 2, dtype=torch.bool))
        with pinning_optional():
            theirs, _ = p['geometry'](geo_prompt=prompt, img_feats=img_feats, img_sizes=sizes,
                                      img_pos_embeds=img_pos)
        *levels, emb = ref['out']
        view = ReferenceView(levels, emb, BOXES, rows, ref['dec'], 112, ref['enc'].out_levels)
        ours = ref['src'](view)
    assert ours.shape == (2, 2, 32)
    # equal up to float summation order (theirs: features gathered per prompt from strided
    # views; ours: gathered from the batch)
    torch.testing.assert_close(ours, theirs.transpose(0, 1), rtol=0, atol=1e-5)


def test_strict_loading_and_clear_errors(ref, tmp_path):
    p = ref['parts']
    assert torch.equal(ref['dec'].no_mem_embed, p['no_mem_embed'])
    for a, b in zip(ref['src'].geometry_encoder.state_dict().values(),
                    p['geometry'].state_dict().values()):
        assert torch.equal(a, b)
    assert not any(q.requires_grad for m in (ref['enc'], ref['dec'], ref['src'])
                   for q in m.parameters())
    with pytest.raises(MissingResourceError, match='missing.pt.*sam3.pt'):
        SAM3PromptDecoder(preset='tiny', checkpoint=str(tmp_path / 'missing.pt'))
    state = torch.load(ref['path'], weights_only=True)['model']
    del state['tracker.no_mem_embed']
    torch.save({'model': state}, tmp_path / 'no_mem.pt')
    with pytest.raises(RuntimeError, match='no tracker no_mem_embed'):
        SAM3PromptDecoder(preset='tiny', checkpoint=str(tmp_path / 'no_mem.pt'))
    with pytest.raises(RuntimeError, match="prefix 'geometry_encoder.'"):
        SAM3ExemplarTokens(preset='toy', checkpoint=ref['path'])  # another preset's widths
    with pytest.raises(ValueError, match="embedding must be one of"):
        SAM3ImageEncoder(preset='tiny', embedding='sam2')
    # the exemplar encoder reads vision_features (neck level 2): a backbone without it
    *levels, emb = ref['out']
    view = ReferenceView(levels, emb, BOXES, None, ref['dec'], 112, (1, 3, 0))
    with pytest.raises(ValueError, match='reads backbone level 2.*add 2 to its out_levels'):
        ref['src'](view)
    from mmsamantics.models.sam import SAM2PromptDecoder
    with pytest.raises(ValueError, match="decoder is SAM2PromptDecoder.*SAM3PromptDecoder"):
        ref['src'].num_tokens([], SAM2PromptDecoder(preset='tiny'))
    with pytest.raises(ValueError, match='same SAM 3 preset'):
        ref['src'].num_tokens([], SAM3PromptDecoder(preset='toy'))


def _toy_sam3_cfg(root: str, checkpoint=None) -> Config:
    """The toy-world SAM 3 config on ``root`` with ``checkpoint`` (None = random) in all
    three places that read SAM 3's weights."""
    cfg = Config.fromfile(TOY_SAM3)
    cfg.merge_from_dict(toy_overrides(root))
    cfg.model.backbone.checkpoint = checkpoint
    cfg.model.mask_head.decoder.checkpoint = checkpoint
    cfg.model.reference_sources[1].checkpoint = checkpoint
    return cfg


def _shift_exemplar_encoder(model) -> None:
    """Load ``model`` with its exemplar encoder's weights changed (the rest kept)."""
    state = model.state_dict()
    state['reference_sources.1.geometry_encoder.final_proj.bias'] += 1.0
    model.load_state_dict(state)


def test_insam_detr_trains_and_predicts_from_the_toy_config(toy_root):
    cfg = _toy_sam3_cfg(toy_root)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert model._token_slices == [(0, 4), (4, 6)]  # 4 mask tokens, then box + CLS
    assert model.token_merge.mlp[0].in_features == 6 * 64
    train = DATASETS.build(cfg.train_dataloader.dataset)
    val = DATASETS.build(cfg.test_dataloader.dataset)
    model.train()
    data = model.data_preprocessor(pseudo_collate([train[0], train[1]]), True)
    assert data['inputs'].shape[-2:] == (224, 224)
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.token_merge.mlp[0].weight.grad is not None
    frozen = [model.backbone, model.mask_head, model.reference_sources]
    assert all(q.grad is None and not q.requires_grad for m in frozen for q in m.parameters())
    assert not model.reference_sources[1].training  # frozen parts stay in eval mode
    model.eval()
    data = model.data_preprocessor(pseudo_collate([val[0], val[1]]), False)
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])
    for ds in out:
        pred = ds.pred_instances
        classes = set(ds.ref_instances.labels.tolist())
        assert set(pred.labels.tolist()) <= classes
        assert len(pred) == min(100, cfg.model.num_queries) * len(classes)  # oracle mode
        assert pred.masks.shape[1:] == ds.ori_shape and pred.masks.dtype == torch.bool
    # the signature covers the exemplar encoder's own weights
    before = model.cache_signature
    _shift_exemplar_encoder(model)
    assert model.signature_parts()['reference_encoder'] == 'sam_tokens+sam3_exemplar'
    assert model.cache_signature != before


@pytest.fixture(scope='module')
def toy_ckpt(toy_root, tmp_path_factory):
    """(SAM 3 weights in the released layout, a full detector checkpoint built from them)."""
    d = tmp_path_factory.mktemp('sam3_toy')
    sam3 = str(d / 'sam3_toy.pth')
    released_layout('toy', sam3)
    torch.manual_seed(0)
    model = MODELS.build(_toy_sam3_cfg(toy_root, sam3).model)
    model.init_weights()
    save_checkpoint({'state_dict': model.state_dict(), 'meta': {}}, str(d / 'model.pth'))
    return sam3, str(d / 'model.pth')


def test_inference_api_and_bank_equal_the_pipeline(toy_root, toy_ckpt, tmp_path):
    from mmsamantics.apis import InContextInferencer
    sam3, ckpt = toy_ckpt
    inf = InContextInferencer(_toy_sam3_cfg(toy_root, sam3), ckpt, device='cpu')
    refs, _ = train_refs(toy_root)
    img = val_images(toy_root)[0]
    res, pred = inferencer_vs_pipeline(inf, img, refs)
    assert_same_predictions(inf, res, pred[pred.scores.argsort(descending=True)])
    # the references' tokens through the bank equal the detector's own (no image read)
    bank = str(tmp_path / 'bank.pth')
    inf.save_bank(bank)
    other = InContextInferencer(_toy_sam3_cfg(toy_root, sam3), ckpt, device='cpu')
    other.load_bank(bank)
    a = inf(img, score_thr=-1.0, max_dets=1000, show_progress=False)[0]
    b = other(img, score_thr=-1.0, max_dets=1000, show_progress=False)[0]
    np.testing.assert_array_equal(a['scores'], b['scores'])
    assert a['labels'] == b['labels'] and a['masks'] == b['masks']
    # other exemplar-encoder weights (the rest unchanged): the bank is refused
    changed = InContextInferencer(_toy_sam3_cfg(toy_root, sam3), ckpt, device='cpu')
    _shift_exemplar_encoder(changed.model)
    with pytest.raises(ValueError, match='another model'):
        changed.load_bank(bank)


def test_full_preset_heads_have_sam3_tracker_shapes():
    """The full SAM 1-task heads have exactly the parameters that sam3's tracker builds
    (``Sam3TrackerBase._build_sam_heads`` with ``build_tracker``'s decoder arguments), so the
    released ``tracker.sam_*`` weights load; on the meta device (no memory)."""
    from sam3.model.sam3_tracker_base import Sam3TrackerBase
    stub = nn.Module()
    stub.hidden_dim, stub.mem_dim, stub.image_size, stub.backbone_stride = 256, 256, 1008, 14
    stub.sam_mask_decoder_extra_args = dict(dynamic_multimask_via_stability=True,
                                            dynamic_multimask_stability_delta=0.05,
                                            dynamic_multimask_stability_thresh=0.98)
    with torch.device('meta'):
        Sam3TrackerBase._build_sam_heads(stub)
        ours = SAM3PromptDecoder(preset='full')
    for name in ('prompt_encoder', 'mask_decoder'):
        theirs = getattr(stub, f'sam_{name}')
        assert {k: v.shape for k, v in getattr(ours, name).state_dict().items()} == \
            {k: v.shape for k, v in theirs.state_dict().items()}, name
    assert ours.mask_decoder.dynamic_multimask_via_stability and ours.img_size == 1008


@pytest.mark.gpu
def test_full_preset_mask_path_and_exemplars_equal_sam3_builders_on_gpu(tmp_path):
    """Full preset on CUDA: weights of sam3's own builders (vision backbone with the SAM 2
    neck, tracker, geometry encoder) saved in the released layout load strictly into the
    three modules, and the box-prompted logits equal sam3's interactive predictor's."""
    from sam3.model.sam1_task_predictor import SAM3InteractiveImagePredictor
    from sam3.model_builder import (_create_geometry_encoder, _create_vision_backbone,
                                    build_tracker)
    torch.manual_seed(0)
    with torch.device('cuda'):
        neck = _create_vision_backbone(enable_inst_interactivity=True).eval()
        tracker = build_tracker(apply_temporal_disambiguation=False).eval()
        geometry = _create_geometry_encoder().eval()
    state = {f'detector.backbone.vision_backbone.{k}': v for k, v in neck.state_dict().items()}
    state.update({f'detector.geometry_encoder.{k}': v for k, v in geometry.state_dict().items()})
    state.update({f'tracker.{k}': v for k, v in tracker.state_dict().items()})
    path = str(tmp_path / 'sam3_random.pt')
    torch.save({'model': state}, path)
    enc = SAM3ImageEncoder(preset='full', checkpoint=path, embedding='interactive',
                           frozen_autocast='off').cuda()
    dec = SAM3PromptDecoder(preset='full', checkpoint=path).cuda()
    src = SAM3ExemplarTokens(preset='full', checkpoint=path).cuda()
    x = torch.randn(1, 3, 1008, 1008, device='cuda')
    boxes = torch.tensor([[100., 120., 600., 900.], [400., 50., 1000., 700.]], device='cuda')
    with torch.no_grad():
        *levels, emb = enc(x)
        ours, our_iou = dec.predict_masks(emb, boxes)
        tokens = src(ReferenceView(levels, emb, boxes, [0, 0], dec, 1008, enc.out_levels))
        # sam3's own: its processor's features (conv_s0 / conv_s1), + no_mem_embed
        s0, s1 = (getattr(tracker.sam_mask_decoder, f'conv_s{i}')(emb[i + 1]) for i in (0, 1))
        pred = SAM3InteractiveImagePredictor(tracker)
        pred._features = {'image_embed': emb[0] + tracker.no_mem_embed.reshape(1, -1, 1, 1),
                          'high_res_feats': [s0, s1]}
        pred._is_image_set, pred._orig_hw = True, [(1008, 1008)]
        _, iou, low = pred._predict(None, None, boxes=boxes, multimask_output=False,
                                    return_logits=True)
    assert ours.shape == (2, 1, 288, 288) and tokens.shape == (2, 2, 256)
    torch.testing.assert_close(ours.clamp(-32, 32), low, rtol=0, atol=1e-4)
    torch.testing.assert_close(our_iou, iou, rtol=0, atol=1e-5)


def test_frozen_feature_cache_gives_the_same_losses(toy_root, tmp_path):
    """The SAM 3 config's one-resolution level is cached like SAM's (the interactive
    embedding, a tuple, is not: training reads levels and reference tokens only), and a
    cached batch gives the losses of the image batch without running SAM 3."""
    from helpers import cached_twin
    model, plain, cached, _, _ = cached_twin(_toy_sam3_cfg(toy_root), str(tmp_path))
    a = model.data_preprocessor(pseudo_collate([plain[i] for i in range(4)]), True)
    b = model.data_preprocessor(pseudo_collate([cached[i] for i in range(4)]), True)
    assert b['inputs'].shape == (4, 64, 16, 16)  # vision_features of the toy preset
    model.reference_store.reset()
    model.train()
    losses = []
    for batch in (a, b):
        torch.manual_seed(0)
        losses.append(model(**batch, mode='loss'))
    for k in losses[0]:
        torch.testing.assert_close(losses[1][k], losses[0][k], atol=1e-5, rtol=1e-5, msg=k)
