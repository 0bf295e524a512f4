"""Region tokens: the box average of SAM's encoder levels as extra reference tokens."""
import json
import os.path as osp

import pytest
import torch
import torch.nn.functional as F

from mmdet.registry import MODELS
from helpers import toy_cfg
from mmsamantics.apis import build_feature_cache
from mmsamantics.datasets import FeatureCache
from mmsamantics.models.layers.region_tokens import box_region_tokens, num_region_tokens
from mmsamantics.models.layers.shape_tokens import box_shape_tokens, shape_grid


def test_box_average_equals_the_cells_mean():
    """On a field linear in x and y, RoIAlign's bilinear samples average exactly to the mean
    of the cells the box covers (a box on cell borders, away from the image edge)."""
    ys, xs = torch.meshgrid(torch.arange(8.), torch.arange(8.), indexing='ij')
    a = torch.randn(2, 6, 1, 1)
    b = torch.randn(2, 6, 1, 1)
    lv = a * xs + b * ys + torch.randn(2, 6, 1, 1)         # (2, 6, 8, 8), stride 8 on 64 px
    boxes = torch.tensor([[16., 16., 48., 48.], [8., 24., 40., 56.]])  # cells 2-5 / 1-4 x 3-6
    got = box_region_tokens([lv, 2 * lv], boxes, input_size=64, width=4)
    cells = torch.stack([lv[0, :, 2:6, 2:6].mean((1, 2)), lv[1, :, 3:7, 1:5].mean((1, 2))])
    want = torch.cat([F.layer_norm(cells, (6,)), F.layer_norm(2 * cells, (6,))], 1)
    assert got.shape == (2, 3, 4)
    torch.testing.assert_close(got.flatten(1), want, atol=1e-5, rtol=1e-5)
    # several boxes of one image: pooled in place, equal to the per-box copies
    idx = torch.tensor([1, 1, 0])
    three = torch.cat([boxes, boxes[:1]])
    in_place = box_region_tokens([lv, 2 * lv], three, 64, 4, img_idx=idx)
    copies = box_region_tokens([lv[idx], 2 * lv[idx]], three, 64, 4)
    torch.testing.assert_close(in_place, copies)
    with pytest.raises(ValueError, match='one image index per box'):
        box_region_tokens([lv, 2 * lv], three, 64, 4, img_idx=torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match='one image index per box'):
        box_region_tokens([lv, 2 * lv], three, 64, 4)  # 3 boxes, 2 images, no index


def test_channels_must_split_into_tokens():
    assert num_region_tokens([96, 96], 64) == 3
    assert num_region_tokens([768] * 4, 256) == 12
    with pytest.raises(ValueError, match='drop RegionTokens from the reference sources'):
        num_region_tokens([96], 64)
    assert box_region_tokens([torch.zeros(0, 96, 4, 4)] * 2, torch.zeros(0, 4), 64,
                             64).shape == (0, 3, 64)


def test_shape_token_samples_the_mask_logits_in_the_box():
    """On logits linear in x and y, RoIAlign's bilinear samples average to the value at each
    bin centre, so the token is 2 sigmoid(logit at the centres of a g x g grid) - 1."""
    a, b, c = 0.7, -0.4, 1.5
    ys, xs = torch.meshgrid(torch.arange(16.), torch.arange(16.), indexing='ij')
    logits = torch.stack([a * xs + b * ys + c, -(a * xs + b * ys + c)])[:, None]  # (2,1,16,16)
    boxes = torch.tensor([[8., 12., 40., 44.], [16., 8., 48., 56.]])  # input side 64: stride 4
    got = box_shape_tokens(logits, boxes, input_size=64, width=4)  # g = 2
    want = []
    for sign, (x0, y0, x1, y1) in zip((1, -1), (boxes / 4 - 0.5).tolist()):  # aligned=True
        cx = [x0 + (j + 0.5) * (x1 - x0) / 2 for j in range(2)]
        cy = [y0 + (i + 0.5) * (y1 - y0) / 2 for i in range(2)]
        want.append([2 * torch.sigmoid(torch.tensor(sign * (a * x + b * y + c))) - 1
                     for y in cy for x in cx])
    assert got.shape == (2, 1, 4)
    torch.testing.assert_close(got[:, 0], torch.tensor(want), atol=1e-5, rtol=1e-5)
    assert shape_grid(256) == 16 and shape_grid(64) == 8
    with pytest.raises(ValueError, match='not a square number'):
        shape_grid(96)
    with pytest.raises(ValueError, match=r'\(R, 1, H, W\) mask logits'):
        box_shape_tokens(logits[:1], boxes, 64, 4)


SOURCES = {'sam_tokens': ['SAMMaskTokens'],
           'sam_tokens+regions': ['SAMMaskTokens', 'RegionTokens'],
           'sam_tokens+regions+shape': ['SAMMaskTokens', 'RegionTokens', 'ShapeToken']}


def build(toy_root, encoder, num_tokens):
    """The toy model with the reference sources named by ``encoder`` and a token-merge MLP
    stated to take ``num_tokens`` tokens."""
    cfg = toy_cfg(toy_root)
    cfg.model.update(reference_sources=[dict(type=t) for t in SOURCES[encoder]])
    cfg.model.token_merge.num_tokens = num_tokens
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return cfg, model.eval()


def val_refs(toy_root, n=5):
    with open(osp.join(toy_root, 'annotations', 'instances_val.json')) as f:
        data = json.load(f)
    files = {im['id']: im['file_name'] for im in data['images']}
    return [dict(key=f'a{a["id"]}', img_path=osp.join(toy_root, 'val', files[a['image_id']]),
                 bbox=[a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                       a['bbox'][1] + a['bbox'][3]]) for a in data['annotations'][:n]]


def test_insam_detr_region_tokens(toy_root, tmp_path):
    _, plain = build(toy_root, 'sam_tokens', 4)
    cfg, model = build(toy_root, 'sam_tokens+regions', 7)
    assert model.num_reference_tokens == 7
    model.backbone.load_state_dict(plain.backbone.state_dict())  # the same (random) SAM
    model.mask_head.load_state_dict(plain.mask_head.state_dict())
    refs = val_refs(toy_root)
    keys, mask_only = plain.encode_references(refs)
    keys2, tokens = model.encode_references(refs)
    assert keys == keys2 and tokens.shape == (5, 7, 64)
    torch.testing.assert_close(tokens[:, :4], mask_only)  # same SAM, same mask tokens
    # the region rows are box_region_tokens of the encoder levels, as computed directly
    from mmsamantics.utils.images import preprocess_images, reference_image_batches
    batch = next(reference_image_batches(refs[:1], model.backbone.img_size, 1))
    x = preprocess_images(model.data_preprocessor, [batch[0][0]])
    with torch.no_grad():
        *levels, _ = model.backbone(x)
    box = torch.tensor(refs[0]['bbox']) * torch.as_tensor(batch[0][1])
    want = box_region_tokens(levels, box[None].float(), model.backbone.img_size, 64)
    torch.testing.assert_close(tokens[:1, 4:], want, atol=1e-5, rtol=1e-5)
    # the feature cache stores the same tokens, under a signature of its own
    assert model.cache_signature != plain.cache_signature
    items = {}
    for r in refs:
        items.setdefault(r['img_path'], dict(img_path=r['img_path'], target=False, refs=[]))
        items[r['img_path']]['refs'].append(dict(key=r['key'], bbox=r['bbox']))
    items = list(items.values())
    cache = FeatureCache(str(tmp_path))
    build_feature_cache(model, items, cache, dtype='float32')
    assert cache.meta['num_tokens'] == 7
    for r, t in zip(refs, tokens):
        torch.testing.assert_close(torch.as_tensor(cache.read_tokens(r['img_path'])[r['key']]), t,
                                   atol=1e-5, rtol=1e-5)
    # the inference API's banks hold the same 7 tokens per reference
    assert model.reference_feature_shape == (7, 64)
    with pytest.raises(ValueError, match='num_tokens=4 but the reference sources give 7'):
        build(toy_root, 'sam_tokens+regions', 4)


def test_insam_detr_shape_token(toy_root):
    """'sam_tokens+regions+shape': the region encoder's tokens, then the shape token of SAM's
    own single-mask output for each box (predicted one image at a time)."""
    _, regions = build(toy_root, 'sam_tokens+regions', 7)
    _, model = build(toy_root, 'sam_tokens+regions+shape', 8)
    model.backbone.load_state_dict(regions.backbone.state_dict())  # the same (random) SAM
    model.mask_head.load_state_dict(regions.mask_head.state_dict())
    refs = val_refs(toy_root, 4)
    _, want7 = regions.encode_references(refs)
    _, tokens = model.encode_references(refs, batch_size=2)
    assert tokens.shape == (4, 8, 64)
    torch.testing.assert_close(tokens[:, :7], want7)
    from mmsamantics.utils.images import preprocess_images, reference_image_batches
    batch = next(reference_image_batches(refs[:1], model.backbone.img_size, 1))
    x = preprocess_images(model.data_preprocessor, [batch[0][0]])
    box = (torch.tensor(refs[0]['bbox']) * torch.as_tensor(batch[0][1])).float()[None]
    with torch.no_grad():
        logits, _ = model.mask_head.decoder.predict_masks(model.backbone(x)[-1], box)
    want = box_shape_tokens(logits, box, model.backbone.img_size, 64)
    torch.testing.assert_close(tokens[:1, 7:], want, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match='num_tokens=7 but the reference sources give 8'):
        build(toy_root, 'sam_tokens+regions+shape', 7)


def test_reference_encoder_strings_of_earlier_configs(toy_root):
    """``reference_encoder='sam_tokens+regions+shape'`` (earlier configs) builds the same
    sources, with a warning naming ``reference_sources``, and keeps its signature, so the
    banks and caches written before still load."""
    _, new = build(toy_root, 'sam_tokens+regions+shape', 8)
    cfg = toy_cfg(toy_root)
    cfg.model.update(reference_encoder='sam_tokens+regions+shape')
    cfg.model.token_merge.num_tokens = 8
    torch.manual_seed(0)
    with pytest.warns(FutureWarning, match='reference_sources'):
        old = MODELS.build(cfg.model)
    old.init_weights()
    assert [type(s).__name__ for s in old.reference_sources] == SOURCES[
        'sam_tokens+regions+shape']
    assert old.cache_signature == new.cache_signature
    assert old.signature_parts()['reference_encoder'] == 'sam_tokens+regions+shape'
    with pytest.raises(ValueError, match='reference_sources'):
        cfg.model.update(reference_encoder='sam_tokens+colour')
        MODELS.build(cfg.model)
