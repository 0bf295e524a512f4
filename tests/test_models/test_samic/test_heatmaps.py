"""Heatmap equation (SAMIC §3.2), point sampling and the heatmap transform."""
import numpy as np
import pytest
from mmcv.transforms import Compose
from mmengine.config import Config

from mmsamantics.datasets.transforms.heatmaps import (GenerateSaliencyHeatmaps,
                                                      gaussian_heatmap, sample_mask_points)

from helpers import REPO, find_step

CONFIG = f'{REPO}/configs/samic_toy.py'


def test_gaussian_heatmap_is_the_papers_equation():
    # two points in a 20 x 30 (h x w) image, heatmap drawn on the same 20 x 30 grid
    pts = np.array([[4.0, 3.0], [20.0, 15.0]])
    sigma = 0.1
    hm = gaussian_heatmap(pts, (20, 30), (20, 30), sigma)
    H, W = 20, 30
    direct = np.zeros((H, W))
    for y in range(H):
        for x in range(W):
            direct[y, x] = sum(np.exp(-(((x - xk) / W) ** 2 + ((y - yk) / H) ** 2)
                                      / (2 * sigma ** 2)) for xk, yk in pts)
    np.testing.assert_allclose(hm, direct / direct.max(), rtol=1e-5, atol=1e-6)
    assert hm.max() == pytest.approx(1.0)
    # on another grid the Gaussians sit at the same normalised place
    big = gaussian_heatmap(pts, (20, 30), (40, 60), sigma)
    assert np.unravel_index(big.argmax(), big.shape) in {(6, 8), (7, 9), (6, 9), (7, 8)}
    assert not gaussian_heatmap(np.zeros((0, 2)), (5, 5), (8, 8)).any()


def test_sample_mask_points_inside_interior_and_deterministic():
    mask = np.zeros((40, 50), np.uint8)
    mask[10:30, 5:45] = 1
    a = sample_mask_points(mask, 5, np.random.default_rng(3))
    b = sample_mask_points(mask, 5, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (5, 2)
    xs, ys = a[:, 0].astype(int), a[:, 1].astype(int)
    assert mask[ys, xs].all()
    # the first point is the most interior one: the rectangle's centre row
    assert 19 <= a[0, 1] <= 20
    # interior: at least half the max distance (10 px) from the border
    assert (np.minimum(ys - 10 + 1, 30 - ys) >= 4).all()
    assert sample_mask_points(np.zeros((4, 4)), 3, np.random.default_rng(0)).shape == (0, 2)
    assert len(sample_mask_points(np.eye(1, dtype=np.uint8), 5, np.random.default_rng(0))) == 1


def test_transform_on_toy_sample(toy_root):
    cfg = Config.fromfile(CONFIG)
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.data_root = toy_root + '/'
    from mmdet.registry import DATASETS
    refs = find_step(cfg.train_pipeline, 'LoadInContextReferences')
    ds_cfg.pipeline = cfg.train_pipeline[:refs + 1]  # up to LoadInContextReferences
    dataset = DATASETS.build(ds_cfg)
    results = dataset[0]
    tf = GenerateSaliencyHeatmaps(size=32, seed=1)
    out = tf(dict(results))
    r = len(results['ref_labels'])
    assert out['ref_heatmaps'].shape == (r, 32, 32) and out['gt_heatmaps'].shape == (r, 32, 32)
    assert np.allclose(out['ref_heatmaps'].max((1, 2)), 1)
    # every target heatmap peaks inside an instance of its reference's class
    masks = results['gt_masks'].to_ndarray()
    h, w = results['img_shape'][:2]
    for lb, g in zip(results['ref_labels'], out['gt_heatmaps']):
        y, x = np.unravel_index(g.argmax(), g.shape)
        union = masks[results['gt_bboxes_labels'] == lb].any(0)
        yy, xx = int((y + 0.5) * h / 32), int((x + 0.5) * w / 32)
        assert union[max(yy - 2, 0):yy + 3, max(xx - 2, 0):xx + 3].any()
    again = tf(dict(results))
    np.testing.assert_array_equal(again['gt_heatmaps'], out['gt_heatmaps'])
    with pytest.raises(KeyError, match='with_mask=True'):
        tf({k: v for k, v in results.items() if k != 'ref_masks'})
    with pytest.raises(KeyError, match='LoadAnnotations'):
        tf({k: v for k, v in results.items() if k != 'gt_masks'})
    assert 'gt_heatmaps' not in GenerateSaliencyHeatmaps(size=32, with_gt=False)(dict(results))
    packed = Compose(cfg.train_pipeline[refs + 1:])(dict(results))  # heatmaps and packing
    assert packed['data_samples'].ref_heatmaps.shape[0] == r
    assert len(packed['data_samples'].metainfo['ref_img_shapes']) == r
