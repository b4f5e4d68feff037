"""Pure geometry of the visual odometry: rotation vectors, depth sampling, reprojection, covariance.

Conventions are :mod:`vega_ros.geometry`'s: OpenCV camera axes, metres, ``T_ab`` maps points of
frame b into frame a, pixel (row i, col j) has its centre at (u, v) = (j + 0.5, i + 0.5). OpenCV's
feature functions (FAST, Lucas-Kanade) put pixel centres at integer coordinates instead:
:func:`cv_to_uv` / :func:`uv_to_cv` convert, and everything here works in ``uv``.
"""

from __future__ import annotations

import numpy as np

from vega_ros import geometry


def cv_to_uv(pts_cv: np.ndarray) -> np.ndarray:
    """OpenCV keypoint coordinates ``[N, 2]`` (pixel centres at integers) -> our ``uv [N, 2]`` float64."""
    return np.asarray(pts_cv, dtype=np.float64).reshape(-1, 2) + geometry.PIXEL_CENTER_OFFSET


def uv_to_cv(uv: np.ndarray) -> np.ndarray:
    """Inverse of :func:`cv_to_uv`: ``[N, 2]`` float32, what ``cv2.calcOpticalFlowPyrLK`` takes."""
    return (np.asarray(uv, dtype=np.float64).reshape(-1, 2) - geometry.PIXEL_CENTER_OFFSET).astype(np.float32)


def so3_exp(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrices ``[..., 3, 3]`` from rotation vectors ``[..., 3]`` (axis * angle, radians)."""
    return geometry.quat_to_matrix(geometry.axis_angle_to_quat(rotvec))


def so3_log(R: np.ndarray) -> np.ndarray:
    """Rotation vectors ``[..., 3]`` (angle in [0, pi]) of rotation matrices ``[..., 3, 3]``."""
    return geometry.quat_to_axis_angle(geometry.matrix_to_quat(R))


def pose_from_vector(x: np.ndarray) -> np.ndarray:
    """``[4, 4]`` transform from ``x = (rx, ry, rz, tx, ty, tz)``: rotation vector then translation."""
    x = np.asarray(x, dtype=np.float64)
    return geometry.make_transform(so3_exp(x[:3]), x[3:6])


def pose_to_vector(T: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pose_from_vector`: ``[6]`` (rotation vector, translation)."""
    T = np.asarray(T, dtype=np.float64)
    return np.concatenate([so3_log(T[:3, :3]), T[:3, 3]])


def sample_depth(depth: np.ndarray, uv: np.ndarray, min_m: float, max_m: float, edge_max_ratio: float) -> np.ndarray:
    """Depth under continuous pixel coordinates, or NaN where it cannot be trusted.

    Args:
        depth: ``[H, W]`` metres, 0 / non-finite = invalid.
        uv: ``[N, 2]`` continuous pixel coordinates (half-pixel convention).
        min_m, max_m: depth outside ``[min_m, max_m]`` is invalid.
        edge_max_ratio: NaN where the 3x3 neighbourhood of the pixel containing ``uv`` has an invalid
            value or spans more than ``edge_max_ratio`` of its median (a depth edge).
    Returns:
        ``[N]`` float64: the median of the 3x3 neighbourhood of the pixel containing each ``uv``
        (exact on smooth surfaces up to their curvature, robust to per-pixel noise, never a blend
        across an edge since edges are refused), NaN where invalid, outside the image or on an edge.
    """
    depth = np.asarray(depth)
    h, w = depth.shape
    rc = geometry.uv_to_pixel_index(np.asarray(uv, dtype=np.float64).reshape(-1, 2))
    out = np.full(len(rc), np.nan)
    inside = (rc[:, 0] >= 1) & (rc[:, 0] < h - 1) & (rc[:, 1] >= 1) & (rc[:, 1] < w - 1)
    if not np.any(inside):
        return out
    r, c = rc[inside, 0], rc[inside, 1]
    d = np.where(np.isfinite(depth), depth, 0.0).astype(np.float64)
    patch = np.stack([d[r + dr, c + dc] for dr in (-1, 0, 1) for dc in (-1, 0, 1)], -1)  # [M, 9]
    med = np.median(patch, axis=-1)
    ok = (patch.min(-1) >= min_m) & (patch.max(-1) <= max_m)
    ok &= (patch.max(-1) - patch.min(-1)) <= edge_max_ratio * np.maximum(med, 1e-12)
    out[np.flatnonzero(inside)[ok]] = med[ok]
    return out


def backproject(uv: np.ndarray, z: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame points ``[N, 3]`` of pixels ``uv [N, 2]`` (half-pixel convention) at z-depths ``z [N]``."""
    uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    K = np.asarray(K, dtype=np.float64)
    y = (uv[:, 1] - K[1, 2]) / K[1, 1]
    x = (uv[:, 0] - K[0, 2] - K[0, 1] * y) / K[0, 0]
    return np.stack([x * z, y * z, z], -1)


def fuse_depth(z_map: np.ndarray, weight_map: np.ndarray, z_new: np.ndarray, max_weight: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-point depth of a new keyframe from the map's prediction and the new depth map.

    Args:
        z_map: ``[N]`` z-depth (m) of each point as the map predicts it in the new keyframe's camera
            (NaN: the map has no point for it); ``weight_map [N]`` how many depth maps it averages.
        z_new: ``[N]`` z-depth (m) sampled from the new keyframe's depth map (NaN: none there).
        max_weight: the map's weight is capped at this, so the estimate keeps following new views.
    Returns:
        ``(z [N], weight [N])``: the weighted geometric mean where both exist (depth errors of a
        monocular network are relative, so they are averaged in log space), whichever exists
        otherwise (NaN, weight 0, where neither does).
    """
    z_map, z_new = np.asarray(z_map, np.float64), np.asarray(z_new, np.float64)
    w = np.where(np.isfinite(z_map) & (z_map > 0), np.minimum(np.asarray(weight_map, np.float64), max_weight), 0.0)
    w_new = np.where(np.isfinite(z_new) & (z_new > 0), 1.0, 0.0)
    total = w + w_new
    with np.errstate(divide="ignore", invalid="ignore"):
        log_z = (w * np.log(np.where(w > 0, z_map, 1.0)) + w_new * np.log(np.where(w_new > 0, z_new, 1.0))) / total
    return np.where(total > 0, np.exp(log_z), np.nan), total


def skew(v: np.ndarray) -> np.ndarray:
    """``[N, 3, 3]`` cross-product matrices of ``v [N, 3]`` (``skew(v) @ x = v x x``)."""
    v = np.asarray(v, dtype=np.float64).reshape(-1, 3)
    z = np.zeros(len(v))
    return np.stack([np.stack([z, -v[:, 2], v[:, 1]], -1), np.stack([v[:, 2], z, -v[:, 0]], -1),
                     np.stack([-v[:, 1], v[:, 0], z], -1)], 1)


def projection_jacobian(q: np.ndarray, K: np.ndarray) -> np.ndarray:
    """``[N, 2, 3]`` derivative of the pixel of camera-frame points ``q [N, 3]`` with respect to ``q``
    (pinhole ``K`` with skew); NaN rows for points at or behind the camera."""
    q = np.asarray(q, dtype=np.float64).reshape(-1, 3)
    zs = np.where(q[:, 2] > 0, q[:, 2], np.nan)
    J = np.zeros((len(q), 2, 3))
    J[:, 0, 0] = K[0, 0] / zs
    J[:, 0, 1] = K[0, 1] / zs
    J[:, 0, 2] = -(K[0, 0] * q[:, 0] + K[0, 1] * q[:, 1]) / zs**2
    J[:, 1, 1] = K[1, 1] / zs
    J[:, 1, 2] = -K[1, 1] * q[:, 1] / zs**2
    return J


def pnp_covariance_world(T_wc: np.ndarray, points_w: np.ndarray, uv: np.ndarray, K: np.ndarray,
                         min_pixel_sigma: float) -> tuple[np.ndarray, float]:
    """Covariance of a camera pose estimated from 2D-3D matches, in nav_msgs/Odometry's layout.

    The pose is perturbed as ``p' = p + dp`` (camera position in the world) and ``R' = exp(dphi) R``
    (rotation about the world axes), so the 6 parameters are (x, y, z, rx, ry, rz) in the world frame.
    With ``J [2N, 6]`` the (analytic) Jacobian of the reprojection residuals and
    ``sigma^2 = max(sum r^2 / (2N - 6), min_pixel_sigma^2)`` the pixel noise estimated from the
    residuals, the covariance is the Gauss-Newton one, ``sigma^2 (J^T J)^-1``: it grows with the
    residuals and shrinks with the number and spread of the inliers. A point behind the camera
    counts with a residual of 1e3 px and no gradient.

    Args:
        T_wc: ``[4, 4]`` estimated pose. points_w: ``[N, 3]`` inlier points in the world frame.
        uv: ``[N, 2]`` their observed pixels. K: ``[3, 3]``. N >= 4.
    Returns:
        ``(covariance [6, 6], sigma_px)``.
    """
    points_w = np.asarray(points_w, dtype=np.float64).reshape(-1, 3)
    n = len(points_w)
    if n < 4:
        raise ValueError(f"pnp_covariance_world needs >= 4 points, got {n}")
    T_wc = np.asarray(T_wc, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    R_t = T_wc[:3, :3].T
    d = points_w - T_wc[:3, 3]
    q = d @ T_wc[:3, :3]  # R^T (X - p), the points in the camera
    uv_hat, _ = geometry.project_points(q, K)
    r0 = uv_hat - np.asarray(uv, dtype=np.float64).reshape(-1, 2)
    # q = R^T exp(-dphi) (X - p - dp): dq/dp = -R^T, dq/dphi = R^T [X - p]x
    J = projection_jacobian(q, K) @ np.concatenate([-np.broadcast_to(R_t, (n, 3, 3)), R_t @ skew(d)], axis=2)
    ok = np.all(np.isfinite(r0), axis=1)
    r0 = np.where(ok[:, None], r0, 1e3).ravel()
    J = np.where(ok[:, None, None], J, 0.0).reshape(2 * n, 6)
    dof = max(2 * n - 6, 1)
    sigma2 = max(float(r0 @ r0) / dof, min_pixel_sigma**2)
    cov = sigma2 * np.linalg.pinv(J.T @ J)
    return 0.5 * (cov + cov.T), float(np.sqrt(sigma2))


def diagonal_covariance(sigma_m: float, sigma_deg: float) -> np.ndarray:
    """``[6, 6]`` diagonal covariance with ``sigma_m`` on x, y, z and ``sigma_deg`` (as radians) on rx, ry, rz."""
    return np.diag([sigma_m**2] * 3 + [np.deg2rad(sigma_deg) ** 2] * 3)


def median_parallax_px(uv_a: np.ndarray, uv_b: np.ndarray) -> float:
    """Median displacement (px) between matched pixels ``[N, 2]``; 0 for no matches."""
    if len(uv_a) == 0:
        return 0.0
    return float(np.median(np.linalg.norm(np.asarray(uv_b, np.float64) - np.asarray(uv_a, np.float64), axis=1)))


def pose_step(T_a: np.ndarray, T_b: np.ndarray) -> tuple[float, float]:
    """(translation m, rotation deg) between two poses ``[4, 4]``."""
    T_ab = geometry.relative_pose(T_a, T_b)
    return float(np.linalg.norm(T_ab[:3, 3])), float(geometry.rotation_angle_deg(np.eye(3), T_ab[:3, :3]))
