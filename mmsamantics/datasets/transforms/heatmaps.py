"""SAMIC's saliency-like heatmaps from point prompts (§3.2), as a data transform.

    G(x, y) = sum_k exp(-(((x - x_k) / W)^2 + ((y - y_k) / H)^2) / (2 sigma^2)),  sigma = 0.02

divided by its maximum so that G is in [0, 1]. Coordinates are normalised by the image size,
so a heatmap drawn on any grid (here the prompter's square input) describes the same
Gaussians. The paper's points were clicked by hand (SAMBOX); here they are sampled from the
instance masks: the most interior pixel (maximum of the distance transform) and
``num_points - 1`` random pixels of the inner part of the mask (distance >= ``interior_frac``
x that maximum), deterministically from (seed, reference key) or (seed, image id, instance).
"""
import zlib
from typing import List, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from mmdet.registry import TRANSFORMS


def sample_mask_points(mask: np.ndarray, num_points: int, rng: np.random.Generator,
                       interior_frac: float = 0.5) -> np.ndarray:
    """Interior points of a binary mask.

    Args:
        mask: (h, w) binary mask.
        num_points: points per mask (fewer when the inner part has fewer pixels).
        rng: the generator of the random points.
        interior_frac: inner part = pixels at least this fraction of the maximum distance
            to the mask border away from it.

    Returns:
        (n, 2) float32 (x, y) pixel indices, the most interior pixel first; (0, 2) for an
        empty mask.
    """
    m = np.asarray(mask).astype(np.uint8)
    if m.ndim != 2:
        raise ValueError(f'mask must be (h, w), got shape {m.shape}')
    if num_points < 1:
        raise ValueError(f'num_points must be >= 1, got {num_points}')
    if not m.any():
        return np.zeros((0, 2), np.float32)
    # pad so that the image border counts as the mask border
    dist = cv2.distanceTransform(np.pad(m, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    best = np.unravel_index(int(np.argmax(dist)), dist.shape)
    ys, xs = np.nonzero(dist >= interior_frac * dist[best])
    others = [(x, y) for x, y in zip(xs, ys) if (y, x) != best]
    k = min(num_points - 1, len(others))
    chosen = [others[i] for i in sorted(rng.choice(len(others), k, replace=False))] if k else []
    return np.asarray([(best[1], best[0])] + chosen, np.float32)


def gaussian_heatmap(points: np.ndarray, src_hw: Tuple[int, int], size: Tuple[int, int],
                     sigma: float = 0.02) -> np.ndarray:
    """The paper's heatmap of ``points`` on a ``size`` grid, divided by its max.

    Args:
        points: (N, 2) (x, y) pixel indices in an image of ``src_hw`` = (h, w) pixels.
        size: (H, W) of the heatmap grid (it covers the same image).
        sigma: Gaussian width as a fraction of the image size.

    Returns:
        (H, W) float32 in [0, 1]; all zeros when there is no point.
    """
    H, W = size
    h, w = src_hw
    out = np.zeros((H, W), np.float64)
    if len(points) == 0:
        return out.astype(np.float32)
    # pixel centres in normalised image coordinates: (x - x_k) / W of the paper
    u = (np.arange(W) + 0.5) / W
    v = (np.arange(H) + 0.5) / H
    uk = (np.asarray(points, np.float64)[:, 0] + 0.5) / w
    vk = (np.asarray(points, np.float64)[:, 1] + 0.5) / h
    for a, b in zip(uk, vk):
        out += np.exp(-((u[None, :] - a) ** 2 + (v[:, None] - b) ** 2) / (2 * sigma ** 2))
    return (out / out.max()).astype(np.float32)


def _seed(*parts) -> List[int]:
    """Stable integer seed parts (``hash`` of a str changes between processes)."""
    return [p if isinstance(p, int) and p >= 0 else zlib.crc32(str(p).encode())
            for p in parts]


@TRANSFORMS.register_module()
class GenerateSaliencyHeatmaps(BaseTransform):
    """Reference heatmaps (prompter input) and per-reference target heatmaps (training GT).

    Place after ``Resize`` and ``LoadInContextReferences(with_mask=True)`` and, for the
    target heatmaps, ``LoadAnnotations(with_mask=True)``; pack with
    :class:`PackSAMICInputs`.

    Added keys:
        ref_heatmaps (np.ndarray): (R, H, W) float32, heatmap of each reference's points.
        ref_img_shapes (list): R (h_r, w_r) resized reference sizes (valid regions).
        gt_heatmaps (np.ndarray): with ``with_gt``: (R, H, W) float32, the heatmap of the
            points of every target instance of reference r's class (zeros if none).

    Args:
        size: heatmap side H = W (use the prompter's ``input_size``).
        sigma: Gaussian width (paper: 0.02).
        num_points: points sampled per instance mask.
        interior_frac: see :func:`sample_mask_points`.
        seed: seed of the point sampling.
        with_gt: also make the target heatmaps (training; evaluation of the heatmaps).
    """

    def __init__(self, size: int = 224, sigma: float = 0.02, num_points: int = 5,
                 interior_frac: float = 0.5, seed: int = 0, with_gt: bool = True) -> None:
        if sigma <= 0:
            raise ValueError(f'sigma must be > 0, got {sigma}')
        self.size = (int(size), int(size))
        self.sigma = sigma
        self.num_points = num_points
        self.interior_frac = interior_frac
        self.seed = seed
        self.with_gt = with_gt

    def _heatmap(self, masks: Sequence[np.ndarray], seeds: Sequence[List[int]]) -> np.ndarray:
        pts = [sample_mask_points(m, self.num_points, np.random.default_rng(s),
                                  self.interior_frac) for m, s in zip(masks, seeds)]
        pts = np.concatenate(pts) if pts else np.zeros((0, 2), np.float32)
        hw = masks[0].shape[:2] if len(masks) else (1, 1)
        return gaussian_heatmap(pts, hw, self.size, self.sigma)

    def transform(self, results: dict) -> dict:
        if 'ref_masks' not in results:
            raise KeyError('GenerateSaliencyHeatmaps needs the reference masks: put '
                           'LoadInContextReferences(..., with_mask=True) before it')
        keys = results.get('ref_keys', list(range(len(results['ref_masks']))))
        ref_maps = [self._heatmap([m], [_seed(self.seed, 'ref', k)])
                    for m, k in zip(results['ref_masks'], keys)]
        empty = np.zeros((0, *self.size), np.float32)
        results['ref_heatmaps'] = np.stack(ref_maps) if ref_maps else empty
        results['ref_img_shapes'] = [tuple(int(v) for v in m.shape[:2])
                                     for m in results['ref_masks']]
        if not self.with_gt:
            return results
        if 'gt_masks' not in results:
            raise KeyError('target heatmaps need the instance masks: add '
                           'LoadAnnotations(with_bbox=True, with_mask=True) to the pipeline '
                           '(or with_gt=False)')
        masks = results['gt_masks'].to_ndarray()
        labels = np.asarray(results['gt_bboxes_labels'])
        ignore = np.asarray(results.get('gt_ignore_flags', np.zeros(len(labels), bool)))
        img_hw = tuple(results['img_shape'][:2])
        if len(masks) and masks.shape[1:] != img_hw:
            raise ValueError(f'gt masks are {masks.shape[1:]} but the image is {img_hw}: load '
                             'the annotations before Resize so both are resized together')
        gt_maps = []
        for lb in results['ref_labels']:
            idx = np.nonzero((labels == lb) & ~ignore)[0]
            if len(idx) == 0:
                gt_maps.append(np.zeros(self.size, np.float32))
                continue
            seeds = [_seed(self.seed, 'img', results.get('img_id', 0), int(i)) for i in idx]
            gt_maps.append(self._heatmap([masks[i] for i in idx], seeds))
        results['gt_heatmaps'] = np.stack(gt_maps) if gt_maps else empty
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size[0]}, sigma={self.sigma}, '
                f'num_points={self.num_points}, seed={self.seed}, with_gt={self.with_gt})')
