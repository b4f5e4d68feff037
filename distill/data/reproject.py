"""Cross-view depth consistency: reproject frame i's depth into frame j and compare with j's depth.

For each valid pixel of frame i, back-project it with ``K_i`` and ``T_wc_i``, move it into camera j
(``relative_pose``), project with ``K_j`` and compare its z with frame j's depth there. Frame j's
depth is interpolated bilinearly in *inverse* depth (exact on planes, which are affine in 1/z
across the image) between the four pixel centres around the projection, and only where those four
are valid and within ``edge_rel`` (relative) of each other (no interpolation across depth edges). Points more
than ``occlusion_m`` behind j's visible surface are occluded in j and dropped (DESIGN.md section 5).
"""

from __future__ import annotations

import numpy as np

from vega_ros.geometry import (
    PIXEL_CENTER_OFFSET,
    depth_to_points,
    project_points,
    relative_pose,
    transform_points,
)


def reprojection_residuals(
    depth_i: np.ndarray,
    K_i: np.ndarray,
    T_wc_i: np.ndarray,
    depth_j: np.ndarray,
    K_j: np.ndarray,
    T_wc_j: np.ndarray,
    occlusion_m: float = 0.02,
    edge_rel: float = 0.02,
) -> np.ndarray:
    """Signed residuals ``z_i->j - depth_j`` (metres, ``[N]`` float64) on the visible overlap.

    Args:
        depth_i, depth_j: ``[H, W]`` z-depth in metres, 0 = invalid.
        K_i, K_j: ``[3, 3]`` intrinsics (half-pixel convention). T_wc_i, T_wc_j: ``[4, 4]`` world-from-camera.
    Returns:
        one residual per pixel of frame i that lands on valid, edge-free depth of frame j and is not
        occluded there (residual <= ``occlusion_m``). Positive = behind j's surface.
    """
    h, w = depth_j.shape
    valid_i = depth_i > 0
    p_i = depth_to_points(depth_i, K_i)[valid_i].astype(np.float64)
    p_j = transform_points(relative_pose(T_wc_j, T_wc_i), p_i)
    uv, z = project_points(p_j, K_j)
    x = uv[:, 0] - PIXEL_CENTER_OFFSET  # continuous column index of pixel centres
    y = uv[:, 1] - PIXEL_CENTER_OFFSET
    ok = np.isfinite(x) & np.isfinite(y) & (x >= 0) & (y >= 0) & (x < w - 1) & (y < h - 1) & (z > 0)
    x, y, z = x[ok], y[ok], z[ok]
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - x0, y - y0
    d = np.stack([depth_j[y0, x0], depth_j[y0, x0 + 1], depth_j[y0 + 1, x0], depth_j[y0 + 1, x0 + 1]], -1).astype(np.float64)
    smooth = np.all(d > 0, -1) & (d.max(-1) - d.min(-1) < edge_rel * d.min(-1))
    inv = 1.0 / np.where(d > 0, d, np.inf)
    wts = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], -1)
    z_j = 1.0 / np.maximum(np.sum(inv * wts, -1), 1e-12)
    r = z - z_j
    keep = smooth & (r <= occlusion_m)
    return r[keep]


def frame_pairs(n_frames: int) -> list[tuple[int, int]]:
    """Frame pairs a validator compares in a clip of ``n_frames``: reference to later frames, and a middle pair."""
    last = n_frames - 1
    pairs = {(0, max(1, n_frames // 4)), (0, n_frames // 2), (0, last), (n_frames // 4, (3 * n_frames) // 4), (last, 0)}
    return sorted((i, j) for i, j in pairs if i != j)
