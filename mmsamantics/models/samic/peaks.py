"""SAMIC's peak finding (§3.4): heatmap -> point prompts.

    B = 1[G >= tau]  (tau = 0.5)
    connected components R_i of B: OpenCV contours (Suzuki & Abe border following)
    centroid of R_i from its spatial moments: x_i = M_x,i / A_i, y_i = M_y,i / A_i,
        M_x,i = sum_{(x, y) in R_i} x B(x, y), A_i = sum_{(x, y) in R_i} B(x, y)

Moments are taken over the component's pixels (the paper's sums), not over the contour
polygon, so a one-pixel component still has a centroid.
"""
from typing import NamedTuple

import cv2
import numpy as np


class Peaks(NamedTuple):
    """Components of one heatmap, largest first.

    Attributes:
        points: (N, 2) float32 centroids (x, y) in heatmap pixel indices.
        areas: (N,) int64 pixel counts A_i.
        values: (N,) float32 maximum heatmap value inside each component.
    """

    points: np.ndarray
    areas: np.ndarray
    values: np.ndarray


def extract_peaks(heatmap: np.ndarray, thr: float = 0.5, min_area: int = 1) -> Peaks:
    """Point prompts of a heatmap (see the module docstring).

    Args:
        heatmap: (H, W) float heatmap.
        thr: binarisation threshold tau.
        min_area: components with fewer pixels are dropped (1 keeps every component).

    Returns:
        :class:`Peaks`; empty arrays when nothing reaches ``thr``.
    """
    heatmap = np.asarray(heatmap, np.float32)
    if heatmap.ndim != 2:
        raise ValueError(f'heatmap must be (H, W), got shape {heatmap.shape}')
    binary = (heatmap >= thr).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    points, areas, values = [], [], []
    for contour in contours:
        region = np.zeros_like(binary)
        cv2.drawContours(region, [contour], -1, 1, thickness=cv2.FILLED)
        region &= binary  # holes inside the outer contour are not part of R_i
        m = cv2.moments(region, binaryImage=True)
        if m['m00'] < max(min_area, 1):
            continue
        points.append((m['m10'] / m['m00'], m['m01'] / m['m00']))
        areas.append(int(m['m00']))
        values.append(float(heatmap[region.astype(bool)].max()))
    if not points:
        return Peaks(np.zeros((0, 2), np.float32), np.zeros(0, np.int64),
                     np.zeros(0, np.float32))
    order = np.argsort(-np.asarray(areas), kind='stable')
    return Peaks(np.asarray(points, np.float32)[order], np.asarray(areas, np.int64)[order],
                 np.asarray(values, np.float32)[order])
