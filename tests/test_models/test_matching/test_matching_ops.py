"""Pooling, prototypes, cosine scores, mask NMS and grid proposals vs direct computations."""
import numpy as np
import pytest
import torch
from segment_anything.utils.amg import build_point_grid

from mmsamantics.models.matching import (SAMGridProposals, class_prototypes, cosine_scores,
                                         grid_weights, mask_iou, mask_nms, masks_to_boxes,
                                         weighted_token_average)


def test_weighted_token_average_equals_direct_loop():
    rng = np.random.default_rng(0)
    c, g, cell = 5, 4, 3  # 4 x 4 tokens, each covering 3 x 3 mask pixels
    feats = rng.normal(size=(c, g, g)).astype(np.float32)
    masks = rng.random((3, g * cell, g * cell)) > 0.6
    masks[2] = False
    masks[2, :cell, :cell] = True  # exactly token (0, 0)
    got = weighted_token_average(torch.from_numpy(feats),
                                 grid_weights(torch.from_numpy(masks), (g, g))).numpy()
    for n in range(3):
        num, den = np.zeros(c), 0.0
        for i in range(g):
            for j in range(g):
                w = masks[n, i * cell:(i + 1) * cell, j * cell:(j + 1) * cell].mean()
                num += w * feats[:, i, j]
                den += w
        np.testing.assert_allclose(got[n], num / den, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[2], feats[:, 0, 0], rtol=1e-6)
    # an empty region pools to zeros instead of NaN
    empty = weighted_token_average(torch.from_numpy(feats), torch.zeros(1, g, g))
    assert torch.equal(empty, torch.zeros(1, c))


def test_prototypes_and_cosine():
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(5, 8)).astype(np.float32)
    labels = np.array([3, 1, 3, 3, 1])
    classes, protos = class_prototypes(torch.from_numpy(feats), torch.from_numpy(labels))
    assert classes.tolist() == [1, 3]
    np.testing.assert_allclose(protos[0], feats[[1, 4]].mean(0), rtol=1e-6)
    np.testing.assert_allclose(protos[1], feats[[0, 2, 3]].mean(0), rtol=1e-6)
    q = rng.normal(size=(4, 8)).astype(np.float32)
    cos = cosine_scores(torch.from_numpy(q), protos).numpy()
    p = protos.numpy()
    direct = (q @ p.T) / np.linalg.norm(q, axis=1)[:, None] / np.linalg.norm(p, axis=1)[None]
    np.testing.assert_allclose(cos, direct, rtol=1e-5, atol=1e-6)


def _naive_nms(masks, scores, thr, labels):
    order = np.argsort(-scores, kind='stable')
    keep = []
    for i in order:
        ok = True
        for j in keep:
            inter = (masks[i] & masks[j]).sum()
            union = (masks[i] | masks[j]).sum()
            if labels[i] == labels[j] and union and inter / union > thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


def test_mask_nms_matches_naive_greedy_classwise():
    rng = np.random.default_rng(2)
    base = rng.random((6, 12, 12)) > 0.5
    # near-duplicates of the base masks: a few flipped pixels
    dups = base ^ (rng.random(base.shape) > 0.93)
    masks = np.concatenate([base, dups, rng.random((8, 12, 12)) > 0.5])
    scores = rng.random(len(masks)).astype(np.float32)
    labels = rng.integers(0, 2, len(masks))
    for thr in (0.3, 0.5, 0.8):
        got = mask_nms(torch.from_numpy(masks), torch.from_numpy(scores), thr,
                       torch.from_numpy(labels)).tolist()
        assert got == _naive_nms(masks, scores, thr, labels)
    # class-agnostic: a duplicate of another class is removed too
    got = mask_nms(torch.from_numpy(masks), torch.from_numpy(scores), 0.5).tolist()
    assert got == _naive_nms(masks, scores, 0.5, np.zeros(len(masks), int))
    iou = mask_iou(torch.from_numpy(masks[:2]), torch.from_numpy(masks[:2]))
    assert torch.allclose(iou.diagonal(), torch.ones(2))


def test_masks_to_boxes_pixel_edges():
    m = torch.zeros(2, 10, 10, dtype=torch.bool)
    m[0, 2:5, 3:8] = True  # rows 2-4, cols 3-7
    assert masks_to_boxes(m).tolist() == [[3, 2, 8, 5], [0, 0, 0, 0]]


def test_grid_proposals_filters_and_geometry():
    from mmsamantics.models.sam import SAMPromptDecoder
    torch.manual_seed(0)
    dec = SAMPromptDecoder('tiny')
    emb = torch.randn(1, 64, 16, 16)
    gen = SAMGridProposals(points_per_side=4, points_per_batch=5, pred_iou_thresh=-10,
                           stability_score_thresh=-1, nms_thresh=1.0, min_mask_area=0)
    # the grid: SAM's, scaled to the valid (unpadded) region
    pts = gen.grid((200, 256))
    np.testing.assert_allclose(pts.numpy(), build_point_grid(4) * [256, 200], rtol=1e-6)
    props = gen(dec, emb, (200, 256))
    assert len(props) == 16 * 3  # nothing filtered: 3 masks per point
    assert not props.masks[:, 50:].any()  # 200 px of 256 = 50 of 64 low-res rows
    logits, iou = dec.predict_point_masks(emb, pts[:, None])
    stab = props.stability
    assert torch.allclose(props.iou_scores.sort().values, iou.flatten().sort().values)
    # filters keep exactly the masks above the thresholds
    gen.pred_iou_thresh = float(iou.median())
    kept = gen(dec, emb, (200, 256))
    assert len(kept) == int((iou.flatten() > gen.pred_iou_thresh).sum())
    assert (kept.iou_scores > gen.pred_iou_thresh).all() and torch.isfinite(stab).any()
    # NMS: no two kept masks overlap more than the threshold
    gen.pred_iou_thresh, gen.nms_thresh = -10, 0.5
    kept = gen(dec, emb, (200, 256))
    iou_kept = mask_iou(kept.masks, kept.masks).fill_diagonal_(0)
    assert len(kept) < 48 and (iou_kept <= 0.5).all()
    gen.max_proposals = 3
    assert len(gen(dec, emb, (200, 256))) == min(3, len(kept))


def test_point_prompts_equal_sam_predictor():
    """predict_point_masks == segment_anything's Sam on the same embedding and points."""
    from segment_anything.modeling import Sam

    from mmsamantics.models.backbones import SAMImageEncoder
    from mmsamantics.models.sam import SAMPromptDecoder
    torch.manual_seed(0)
    enc, dec = SAMImageEncoder('tiny'), SAMPromptDecoder('tiny')
    sam = Sam(enc.encoder, dec.prompt_encoder, dec.mask_decoder).eval()
    emb = torch.randn(1, 64, 16, 16)
    pts = torch.tensor([[[30., 40.]], [[100., 200.]]])
    lab = torch.ones(2, 1, dtype=torch.int)
    sparse, dense = sam.prompt_encoder(points=(pts, lab), boxes=None, masks=None)
    ref, ref_iou = sam.mask_decoder(image_embeddings=emb, image_pe=sam.prompt_encoder.get_dense_pe(),
                                    sparse_prompt_embeddings=sparse,
                                    dense_prompt_embeddings=dense, multimask_output=True)
    got, iou = dec.predict_point_masks(emb, pts)
    assert torch.allclose(got, ref) and torch.allclose(iou, ref_iou)
    with pytest.raises(ValueError, match=r'\(N, P, 2\)'):
        dec.predict_point_masks(emb, pts[:, 0])
