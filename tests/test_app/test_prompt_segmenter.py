"""Clicks and boxes give exactly SamPredictor's masks, from a fresh or a cached embedding."""
import json
import os.path as osp

import numpy as np
import pytest

from mmsamantics.app import PromptError, PromptSegmenter
from sam_reference import sam_masks

PROMPTS = [  # (points [x, y, label], box)
    ([[150, 130, 1], [60, 200, 0]], None),
    (None, [40, 40, 160, 160]),
    ([[100, 100, 1]], [40, 40, 160, 160]),
]


def test_prompts_give_sam_predictor_masks(app_inferencer, app_folder, tmp_path):
    model = app_inferencer.model
    seg = PromptSegmenter(model, str(tmp_path / 'cache'))
    path = osp.join(app_folder, '000000.png')
    for points, box in PROMPTS:
        masks, iou = seg.segment(path, points or [], box)
        ref, ref_iou = sam_masks(model, path, points, box)
        assert masks.shape == (1, 274, 310)
        np.testing.assert_array_equal(masks, ref)
        np.testing.assert_allclose(iou, ref_iou, rtol=1e-5, atol=1e-6)


def test_single_click_adds_sams_three_multimask_candidates(app_inferencer, app_folder):
    model = app_inferencer.model
    path = osp.join(app_folder, '000001.png')
    masks, iou = PromptSegmenter(model).segment(path, [[120, 90, 1]])
    single, s_iou = sam_masks(model, path, [[120, 90, 1]])
    multi, m_iou = sam_masks(model, path, [[120, 90, 1]], multimask=True)
    np.testing.assert_array_equal(masks, np.concatenate([single, multi]))
    np.testing.assert_allclose(iou, np.concatenate([s_iou, m_iou]), rtol=1e-5, atol=1e-6)


def test_cached_embedding_gives_the_same_masks(app_inferencer, app_folder, tmp_path):
    model = app_inferencer.model
    path = osp.join(app_folder, '000002.png')
    first = PromptSegmenter(model, str(tmp_path))
    fresh = first.segment(path, [[80, 70, 1]])
    cache_dir = tmp_path / first.signature
    with open(cache_dir / 'meta.json') as f:
        assert json.load(f)['signature'] == first.signature  # keyed by the model signature
    again = PromptSegmenter(model, str(tmp_path))
    assert again.is_embedded(path) and path not in again._memory
    cached = again.segment(path, [[80, 70, 1]])
    np.testing.assert_array_equal(fresh[0], cached[0])
    np.testing.assert_array_equal(fresh[1], cached[1])


@pytest.mark.parametrize('points, box, match', [
    ([[400, 10, 1]], None, 'outside the 310x274 image'),
    ([[10, 10, 2]], None, 'labels are 1'),
    ([[10, 10]], None, r'\[x, y, label\]'),
    ([], None, 'no prompt'),
    ([[10, 10, 0]], None, 'only background clicks'),
    ([], [10, 10, 10.5, 40], 'under 1 px'),
    ([], [1, 2, 3], r'\[x1, y1, x2, y2\]'),
])
def test_bad_prompts_are_named(app_inferencer, app_folder, points, box, match):
    seg = PromptSegmenter(app_inferencer.model)
    with pytest.raises(PromptError, match=match):
        seg.segment(osp.join(app_folder, '000000.png'), points, box)


def test_a_model_without_sam_parts_is_refused():
    with pytest.raises(ValueError, match='needs a model with a SAM image encoder'):
        PromptSegmenter(object())


def test_sam2_clicks_and_boxes_stay_in_memory(app_folder, tmp_path):
    """SAM 2 (random tiny preset): clicks and boxes work, its multi-tensor embedding is kept
    in memory, a box gives the model's own mask-head mask, clicks + box are refused."""
    import torch
    from mmengine.config import Config
    from mmengine.structures import InstanceData
    from helpers import REPO
    from mmsamantics.apis import build_model
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'insam_detr',
                                   'insam-detr_sam2-tiny_1xb4-12e_toy-world.py'))
    torch.manual_seed(0)
    model = build_model(cfg)
    seg = PromptSegmenter(model, str(tmp_path))
    path = osp.join(app_folder, '000000.png')
    masks, iou = seg.segment(path, [[150, 130, 1]])
    assert masks.shape == (4, 274, 310) and iou.shape == (4,)
    box = [40, 40, 160, 160]
    masks, _ = seg.segment(path, [], box)
    emb, meta = seg.embedding(path)
    res = InstanceData(bboxes=torch.tensor([box], dtype=torch.float32), scores=torch.ones(1))
    ref = model.mask_head.predict(emb, [res], [dict(meta, scale_factor=meta['scale'][:2])])
    np.testing.assert_array_equal(masks, ref[0].masks.numpy())
    assert not osp.exists(osp.join(tmp_path, seg.signature, 'meta.json'))
    with pytest.raises(PromptError, match='takes clicks or a box, not both'):
        seg.segment(path, [[150, 130, 1]], box)
