"""Windowed refinement: the poses of the last keyframes, adjusted together against the tracks they share.

Structure is not refined: every keyframe's 3D points come from its own (metric) depth, which is
what holds the scale. For each pair of window keyframes (a, b) that see the same track, the
point back-projected in a must reproject onto the track's pixel in b (and b's onto a's). The
oldest keyframe is held fixed (it anchors the gauge); the others' ``T_wc`` move, with a Huber loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from vega_ros import geometry
from vega_ros.odometry.pose_math import pose_from_vector, pose_to_vector


@dataclass(frozen=True)
class PairObservations:
    """Points of keyframe ``a`` (``points_a [N, 3]``, camera frame of a) observed in keyframe ``b`` at ``uv_b [N, 2]``."""

    a: int
    b: int
    points_a: np.ndarray
    uv_b: np.ndarray


def window_residuals(T_wc: np.ndarray, pairs: list[PairObservations], K: np.ndarray) -> np.ndarray:
    """Stacked reprojection residuals (px) ``[sum 2N]`` of every pair under poses ``T_wc [M, 4, 4]``."""
    out = []
    for p in pairs:
        T_ba = geometry.relative_pose(T_wc[p.b], T_wc[p.a])
        uv_hat, _ = geometry.project_points(geometry.transform_points(T_ba, p.points_a), K)
        r = uv_hat - p.uv_b
        out.append(np.where(np.isfinite(r), r, 1e3).ravel())
    return np.concatenate(out) if out else np.zeros(0)


def refine_window(T_wc: np.ndarray, pairs: list[PairObservations], K: np.ndarray, huber_px: float,
                  max_evaluations: int) -> np.ndarray:
    """Refined ``T_wc [M, 4, 4]`` (keyframe 0 unchanged). Returns the input when there is nothing to
    refine (M < 2 or no observations) or when the solver does not lower the cost."""
    T_wc = np.asarray(T_wc, dtype=np.float64)
    m = len(T_wc)
    if m < 2 or not pairs or sum(len(p.points_a) for p in pairs) < 6 * (m - 1):
        return T_wc.copy()
    x0 = np.concatenate([pose_to_vector(T) for T in T_wc[1:]])

    def unpack(x: np.ndarray) -> np.ndarray:
        return np.concatenate([T_wc[:1], np.stack([pose_from_vector(v) for v in x.reshape(-1, 6)])])

    def fun(x: np.ndarray) -> np.ndarray:
        return window_residuals(unpack(x), pairs, K)

    sol = least_squares(fun, x0, loss="huber", f_scale=max(huber_px, 1e-6), max_nfev=max(max_evaluations, 1),
                        x_scale="jac", method="trf")
    if not np.all(np.isfinite(sol.x)) or sol.cost > 0.5 * np.sum(_huber(fun(x0), huber_px)):
        return T_wc.copy()
    return unpack(sol.x)


def _huber(r: np.ndarray, scale: float) -> np.ndarray:
    """scipy's 'huber' rho (in units of scale^2), to compare costs the way least_squares reports them."""
    z = (r / scale) ** 2
    return scale**2 * np.where(z <= 1, z, 2 * np.sqrt(z) - 1)
