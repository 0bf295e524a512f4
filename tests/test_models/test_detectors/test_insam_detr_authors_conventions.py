"""A checkpoint of the authors' code, converted, predicts with the ``_authors`` config's
pipeline and ``authors_conventions=True`` what the authors' convention computes: their
``FixShapeResize`` (long side to S, zero pixels to S x S, scale factor (s, s)), SAM's
``preprocess`` on BGR values, no padding mask, boxes scaled and clamped by S and divided by
s, masks cropped to the resized image. Computed here from the model's parts on a non-square
image (the test of the switch's every part)."""
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.structures import InstanceData

from mmdet.registry import TRANSFORMS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import bbox_cxcywh_to_xyxy
from mmsamantics.utils.images import rescale
from authors_helpers import authors_layout, built_model, random_sam_config
from helpers import REPO, find_step, load_tool

pytestmark = pytest.mark.filterwarnings('ignore:Overwriting tiny_vit:UserWarning',
                                        'ignore:Importing from timm.models:FutureWarning')
S = 256  # the tiny SAM's input side
SAM_MEAN, SAM_STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
RNG = np.random.default_rng(0)
# BGR, not square; their resize makes it 162 x 255, not 162 x 256 (as 640 x 424 at S = 1024)
IMAGE = RNG.integers(0, 256, (203, 320, 3), dtype=np.uint8)
# 240 x 320 resizes to 192 x 256 with ratio 0.8 on both axes, the ratio the authors' resize
# scales reference boxes by: the reference tokens of both conventions are the same
REFERENCE = RNG.integers(0, 256, (240, 320, 3), dtype=np.uint8)
REF_BOX = np.array([40, 30, 200, 180], np.float32)
FIX_SHAPE = dict(type='FixShapeResize', width=S, height=S, keep_ratio=True)  # the _authors


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    """The authors' model (random HQ-SAM toy weights) and ours loaded from its converted
    checkpoint, with and without the switch."""
    tmp = tmp_path_factory.mktemp('authors')
    config = random_sam_config(str(tmp))
    theirs = built_model(config, seed=0)
    with torch.no_grad():  # random init leaves SAM's masks near 0: make every weight count
        for p in theirs.mask_head.decoder.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    src, dst = str(tmp / 'theirs.pth'), str(tmp / 'ours.pth')
    torch.save(dict(meta={}, state_dict=authors_layout(theirs).state_dict()), src)
    load_tool('tools/model_converters/samantics_to_mmsam.py').convert(src, dst, config=config)
    ours = built_model(config, seed=1)
    ours.load_state_dict(torch.load(dst, weights_only=True)['state_dict'])
    plain = built_model(random_sam_config(str(tmp), authors_conventions=False), seed=1)
    plain.load_state_dict(ours.state_dict())
    return theirs, ours, plain


def predict(model, resize: dict):
    """``model.predict`` on IMAGE with REFERENCE; the target resized by ``resize`` (a
    pipeline step), the reference as ``LoadInContextReferences`` does."""
    step = TRANSFORMS.build(resize)
    res = step(dict(img=IMAGE.copy(), img_shape=IMAGE.shape[:2], ori_shape=IMAGE.shape[:2]))
    x = res['img']
    r, r_scale = rescale(REFERENCE, S)
    ds = DetDataSample(metainfo=dict(
        img_shape=res['img_shape'], ori_shape=IMAGE.shape[:2], query_mode='oracle',
        scale_factor=res['scale_factor'], ref_keys=['ref'], ref_img_shapes=[r.shape[:2]]))
    ds.ref_instances = InstanceData(bboxes=torch.from_numpy(REF_BOX * r_scale)[None],
                                    labels=torch.tensor([0]))
    ds.ref_inputs = [torch.from_numpy(np.ascontiguousarray(r.transpose(2, 0, 1)))]
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))
    data = model.data_preprocessor(dict(inputs=[x], data_samples=[ds]), False)
    with torch.no_grad():
        return model.predict(data['inputs'], data['data_samples'])[0].pred_instances


def fix_shape_input(img: np.ndarray):
    """Their pipeline and SAM's ``preprocess``: (1, 3, S, S) input, s, and the (h, w) their
    ``predict`` crops masks to (computed from s: one more than the image on some sizes)."""
    h0, w0 = img.shape[:2]
    s = min(S / w0, S / h0)
    crop = (int(h0 * s + 0.5), int(w0 * s + 0.5))
    x = mmcv.imrescale(img, crop[::-1], backend='cv2')
    padded = np.zeros((S, S, 3), np.float32)  # 0-valued pixels, before normalising
    padded[:x.shape[0], :x.shape[1]] = x
    t = torch.from_numpy(padded).permute(2, 0, 1)  # BGR: the channels are never swapped
    t = (t - torch.tensor(SAM_MEAN).view(3, 1, 1)) / torch.tensor(SAM_STD).view(3, 1, 1)
    return t[None], s, crop


@torch.no_grad()
def authors_predict(model):
    """Scores (Q,), boxes (Q, 4) in original pixels and masks (Q, H0, W0) of the authors'
    convention, from ``model``'s parts (each image through SAM on its own: a batch of other
    images changes float rounding, not the math)."""
    t, s, (h, w) = fix_shape_input(IMAGE)
    r, s_ref, _ = fix_shape_input(REFERENCE)
    *levels, target_emb = model.backbone(t)
    *_, ref_emb = model.backbone(r)
    ref_box = torch.from_numpy(REF_BOX * s_ref)[None]  # scaled by (s, s)
    query_ref = model.token_merge(model.mask_head.decoder.mask_tokens(ref_emb, ref_box))
    flat, pos, shapes = [], [], []
    for lvl, f in enumerate(model.neck(tuple(levels))):  # no padding mask: valid ratios 1
        p = model.positional_encoding(None, input=f)
        flat.append(f.flatten(2).transpose(1, 2))
        pos.append(p.flatten(2).transpose(1, 2) + model.level_embed[lvl].view(1, 1, -1))
        shapes.append(f.shape[-2:])
    flat, pos, shapes = torch.cat(flat, 1), torch.cat(pos, 1), torch.tensor(shapes)
    geometry = dict(spatial_shapes=shapes, valid_ratios=torch.ones(1, len(shapes), 2),
                    level_start_index=torch.cat([shapes.new_zeros(1),
                                                 shapes.prod(1).cumsum(0)[:-1]]))
    memory = model.encoder(query=flat, query_pos=pos, key_padding_mask=None, **geometry)
    query_pos, query = model.query_embedding.weight.split(model.embed_dims, dim=1)
    points = model.reference_points_fc(query_pos).sigmoid()[None]
    hidden, refs = model.decoder(query=(query + query_ref)[None], value=memory,
                                 query_pos=query_pos[None], key_padding_mask=None,
                                 reference_points=points,
                                 reg_branches=model.bbox_head.reg_branches, **geometry)
    logits, coords = model.bbox_head(hidden, [points, *refs])
    scores, idx = logits[-1, 0].sigmoid().view(-1).topk(model.num_queries)
    boxes = bbox_cxcywh_to_xyxy(coords[-1, 0][idx]) * S  # the padded side, both axes
    boxes.clamp_(min=0, max=S)
    low_res, _ = model.mask_head.decoder.predict_masks(target_emb, boxes)
    masks = F.interpolate(low_res, (S, S), mode='bilinear', align_corners=False)[..., :h, :w]
    masks = F.interpolate(masks, IMAGE.shape[:2], mode='bilinear', align_corners=False)
    return scores, boxes / boxes.new_tensor([s, s]).repeat((1, 2)), masks[:, 0] > 0


def test_switch_reproduces_the_authors_predictions(models):
    theirs, ours, plain = models
    scores, boxes, masks = authors_predict(theirs)
    got = predict(ours, FIX_SHAPE)
    assert 0.2 < masks.float().mean() < 0.8  # masks that can differ
    assert torch.equal(got.scores, scores)
    assert torch.equal(got.bboxes, boxes)
    assert torch.equal(got.masks, masks)
    assert (got.labels == 0).all()
    # our conventions on the same weights give other boxes (no padding in the boxes' scale)
    other = predict(plain, dict(type='Resize', scale=(S, S), keep_ratio=True))
    assert not torch.allclose(other.bboxes, boxes, atol=1.0)


def test_signature_covers_the_conventions(models):
    """Banks and caches made under one convention are refused under the other."""
    _, ours, plain = models
    assert ours.cache_signature != plain.cache_signature


def test_authors_config_is_what_the_test_runs():
    """The ``_authors`` config: the switch, their resize in both pipelines, before the flip."""
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'insam_detr',
                                   'insam-detr_hq-sam-vit-b_16xb3-50e_coco_authors.py'))
    side = cfg.model.data_preprocessor.pad_size_divisor
    assert cfg.model.data_preprocessor.authors_conventions and side == 1024
    for loader in ('train_dataloader', 'test_dataloader'):
        pipeline = cfg[loader].dataset.pipeline
        step = pipeline[find_step(pipeline, 'FixShapeResize')]
        assert step == dict(FIX_SHAPE, width=side, height=side)
        assert 'Resize' not in [s['type'] for s in pipeline]
    train = cfg.train_dataloader.dataset.pipeline
    assert find_step(train, 'FixShapeResize') < find_step(train, 'RandomFlip')
