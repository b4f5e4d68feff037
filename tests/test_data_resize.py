"""Fitting real frames to the probe size: K follows the crop and resize exactly, depth stays at its pixel centres."""

from __future__ import annotations

import numpy as np

from distill.data.resize import fit_frame, resample_depth
from vega_ros.geometry import depth_to_world_points, look_at


def _plane_depth(T_wc, K, h, w):
    v, u = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    d_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    d_world = d_cam @ T_wc[:3, :3].T
    return (-T_wc[2, 3] / d_world[..., 2]).astype(np.float32)


def test_fit_frame_keeps_points_on_the_plane():
    H, W = 90, 160
    K = np.array([[140.0, 0, 81.0], [0, 139.0, 44.0], [0, 0, 1]])
    T_wc = look_at([0.7, -0.8, 1.0], [0, 0, 0])
    depth = _plane_depth(T_wc, K, H, W)
    rgb = np.zeros((H, W, 3), np.uint8)
    for size in [(32, 32), (45, 80), (37, 53)]:  # non-integer factors and crops
        r, d, K2 = fit_frame(rgb, depth, K, size)
        assert r.shape == size + (3,) and d.shape == size
        assert (d > 0).mean() > 0.95
        world = depth_to_world_points(d, K2, T_wc)
        assert np.nanmax(np.abs(world[..., 2])) < 1e-5, size


def test_resample_depth_invalidates_holes_and_edges():
    d = np.full((8, 8), 2.0, np.float32)
    d[0:2, 0:2] = 0.0  # a hole
    d[:, 6:] = 3.0  # a step
    out = resample_depth(d, (4, 4))
    assert out[0, 0] == 0.0  # touches the hole
    assert out[2, 1] == 2.0  # inside the flat part (exact average of equal values)
    assert out[2, 3] == 3.0  # right of the step, samples only 3.0
    half = resample_depth(d, (8, 8))  # identity size: values kept exactly
    np.testing.assert_array_equal(half, d)
