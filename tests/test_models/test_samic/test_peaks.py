"""Peak extraction (SAMIC §3.4) on synthetic heatmaps with known blobs."""
import numpy as np
import pytest

from mmsamantics.models.samic import extract_peaks


def test_disc_and_rectangle_centroids():
    hm = np.zeros((60, 80), np.float32)
    yy, xx = np.mgrid[:60, :80]
    disc = (xx - 20.0) ** 2 + (yy - 15.0) ** 2 <= 36
    hm[disc] = 0.9
    hm[40:50, 50:71] = 0.7  # rectangle: centroid (60, 44.5)
    hm[5, 70] = 0.6         # a one-pixel component
    hm[30, 30] = 0.4        # below the threshold
    p = extract_peaks(hm, 0.5)
    assert len(p.points) == 3
    # largest first: rectangle (210 px), disc, single pixel
    np.testing.assert_allclose(p.points[0], [60.0, 44.5], atol=1e-6)
    np.testing.assert_allclose(p.points[1], [xx[disc].mean(), yy[disc].mean()], atol=1e-6)
    np.testing.assert_allclose(p.points[2], [70, 5])
    assert p.areas.tolist() == [210, int(disc.sum()), 1]
    np.testing.assert_allclose(p.values, [0.7, 0.9, 0.6])
    assert len(extract_peaks(hm, 0.5, min_area=2).points) == 2


def test_ring_centroid_ignores_its_hole():
    yy, xx = np.mgrid[:40, :40]
    ring = ((xx - 10) ** 2 + (yy - 20) ** 2 <= 64) & ((xx - 10) ** 2 + (yy - 20) ** 2 > 9)
    hm = np.where(ring, 1.0, 0.0)
    hm[18:23, 12:15] = np.where(ring[18:23, 12:15], 1.0, 0.0)
    p = extract_peaks(hm)
    assert len(p.points) == 1 and p.areas[0] == ring.sum()
    np.testing.assert_allclose(p.points[0], [xx[ring].mean(), yy[ring].mean()], atol=1e-6)


def test_no_peak_and_bad_input():
    p = extract_peaks(np.full((8, 8), 0.2))
    assert p.points.shape == (0, 2) and len(p.areas) == 0
    with pytest.raises(ValueError, match=r'\(H, W\)'):
        extract_peaks(np.zeros((1, 8, 8)))
