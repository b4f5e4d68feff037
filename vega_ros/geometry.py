"""Camera geometry in pure numpy: intrinsics, back-projection, SE(3), quaternions, pose metrics.

Conventions (used everywhere in vega_ros and distill):
- Units are metres and radians (degrees only where a name says ``_deg``).
- Camera axes are OpenCV's: x right, y down, z forward (the ROS optical frame, REP 103).
- ``T_wc`` is a 4x4 world-from-camera transform: ``p_world = T_wc @ p_cam``; ``T_cw`` its inverse.
- Depth is z-depth in metres; 0 (or any non-finite / non-positive value) marks an invalid pixel.
- Pixel centres: pixel (row i, col j) has its centre at (u, v) = (j + 0.5, i + 0.5). The image
  spans [0, W] x [0, H] in continuous coordinates, so a camera whose optical axis goes through
  the image centre has (cx, cy) = (W / 2, H / 2) (as robosuite's intrinsics assume), and resizing
  an image by (sx, sy) scales fx, fy, cx, cy by exactly (sx, sy, sx, sy).
- Quaternions are in ROS order (x, y, z, w), unit norm, canonicalised to w >= 0.

All functions accept leading batch dimensions where their docstring shows ``[..., ]``.
"""

from __future__ import annotations

import numpy as np

PIXEL_CENTER_OFFSET = 0.5
"""u = col + PIXEL_CENTER_OFFSET, v = row + PIXEL_CENTER_OFFSET (see module docstring)."""


# ----------------------------------------------------------------------------- intrinsics


def intrinsics_from_fov(width: int, height: int, fov_y_deg: float, fov_x_deg: float | None = None) -> np.ndarray:
    """Pinhole intrinsics ``K [3, 3]`` (float64, pixels) from vertical (and optionally horizontal) fov.

    Square pixels (fx = fy) unless ``fov_x_deg`` is given. The principal point is the image
    centre (W / 2, H / 2) under the half-pixel convention.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if not 0.0 < fov_y_deg < 180.0:
        raise ValueError(f"fov_y_deg must be in (0, 180), got {fov_y_deg}")
    fy = 0.5 * height / np.tan(np.deg2rad(fov_y_deg) / 2.0)
    fx = fy if fov_x_deg is None else 0.5 * width / np.tan(np.deg2rad(fov_x_deg) / 2.0)
    return np.array([[fx, 0.0, width / 2.0], [0.0, fy, height / 2.0], [0.0, 0.0, 1.0]])


def fov_from_intrinsics(K: np.ndarray, width: int, height: int) -> tuple[float, float]:
    """(fov_x, fov_y) in radians of intrinsics ``K [..., 3, 3]`` for an image of ``width x height``."""
    K = np.asarray(K, dtype=np.float64)
    fov_x = 2.0 * np.arctan(0.5 * width / K[..., 0, 0])
    fov_y = 2.0 * np.arctan(0.5 * height / K[..., 1, 1])
    return fov_x, fov_y


def scale_intrinsics(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Intrinsics after resizing the image by factors (sx, sy) = (W'/W, H'/H). ``K [..., 3, 3]``."""
    out = np.array(K, dtype=np.float64, copy=True)
    out[..., 0, :] *= sx
    out[..., 1, :] *= sy
    return out


def resize_intrinsics(K: np.ndarray, src_wh: tuple[int, int], dst_wh: tuple[int, int]) -> np.ndarray:
    """Intrinsics for an image resized from ``src_wh = (W, H)`` to ``dst_wh = (W', H')``."""
    return scale_intrinsics(K, dst_wh[0] / src_wh[0], dst_wh[1] / src_wh[1])


def crop_intrinsics(K: np.ndarray, x0: float, y0: float) -> np.ndarray:
    """Intrinsics after cropping the image so that pixel column ``x0``, row ``y0`` becomes (0, 0)."""
    out = np.array(K, dtype=np.float64, copy=True)
    out[..., 0, 2] -= x0
    out[..., 1, 2] -= y0
    return out


# ----------------------------------------------------------------------------- projection


def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Continuous pixel-centre coordinates ``(u, v)``, each ``[H, W]`` float64."""
    v, u = np.meshgrid(
        np.arange(height, dtype=np.float64) + PIXEL_CENTER_OFFSET,
        np.arange(width, dtype=np.float64) + PIXEL_CENTER_OFFSET,
        indexing="ij",
    )
    return u, v


def valid_depth_mask(depth: np.ndarray) -> np.ndarray:
    """``[..., H, W]`` bool: finite and strictly positive depth."""
    depth = np.asarray(depth)
    return np.isfinite(depth) & (depth > 0)


def depth_to_points(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Back-project z-depth to camera-frame points.

    Args:
        depth: ``[H, W]`` metres (0 / non-finite = invalid).
        K: ``[3, 3]`` intrinsics for this image size.
    Returns:
        ``[H, W, 3]`` float32 points in the OpenCV camera frame; invalid pixels are (0, 0, 0).
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be [H, W], got shape {depth.shape}")
    K = np.asarray(K, dtype=np.float64)
    h, w = depth.shape
    valid = valid_depth_mask(depth)
    z = np.where(valid, depth, 0.0).astype(np.float64)
    u, v = pixel_grid(h, w)
    x = (u - K[0, 2] - K[0, 1] * (v - K[1, 2]) / K[1, 1]) / K[0, 0] * z
    y = (v - K[1, 2]) / K[1, 1] * z
    return np.stack([x, y, z], axis=-1).astype(np.float32)


def transform_points(T: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 transform ``T`` to points ``[..., 3]``; returns the same shape and dtype."""
    T = np.asarray(T, dtype=np.float64)
    p = np.asarray(points)
    out = p.astype(np.float64) @ T[:3, :3].T + T[:3, 3]
    return out.astype(p.dtype if np.issubdtype(p.dtype, np.floating) else np.float64)


def depth_to_world_points(depth: np.ndarray, K: np.ndarray, T_wc: np.ndarray) -> np.ndarray:
    """Back-project ``depth [H, W]`` into the world frame with ``T_wc``; ``[H, W, 3]`` float32.

    Invalid pixels are NaN (a zero in the world frame would be a real place).
    """
    pts = transform_points(T_wc, depth_to_points(depth, K))
    pts[~valid_depth_mask(depth)] = np.nan
    return pts


def project_points(points_cam: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project camera-frame points ``[..., 3]`` to pixels.

    Returns:
        ``uv [..., 2]`` continuous pixel coordinates (half-pixel convention) and ``z [...]``.
        Points with z <= 0 get uv = NaN.
    """
    p = np.asarray(points_cam, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    z = p[..., 2]
    safe = np.where(z > 0, z, np.nan)
    x, y = p[..., 0] / safe, p[..., 1] / safe
    u = K[0, 0] * x + K[0, 1] * y + K[0, 2]
    v = K[1, 1] * y + K[1, 2]
    return np.stack([u, v], axis=-1), z


def uv_to_pixel_index(uv: np.ndarray) -> np.ndarray:
    """Continuous ``uv [..., 2]`` to integer ``(row, col) [..., 2]`` of the pixel containing it.

    Pixel (i, j) covers u in [j, j + 1) and v in [i, i + 1) (its centre is at +0.5).
    """
    return np.floor(uv[..., ::-1]).astype(np.int64)


# ----------------------------------------------------------------------------- SE(3)


def make_transform(R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """4x4 transform from rotation ``R [..., 3, 3]`` and translation ``t [..., 3]``."""
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    T = np.zeros(R.shape[:-2] + (4, 4))
    T[..., :3, :3] = R
    T[..., :3, 3] = t
    T[..., 3, 3] = 1.0
    return T


def se3_inverse(T: np.ndarray) -> np.ndarray:
    """Inverse of rigid transforms ``T [..., 4, 4]`` (uses R^T, not a general matrix inverse)."""
    T = np.asarray(T, dtype=np.float64)
    R_t = np.swapaxes(T[..., :3, :3], -1, -2)
    t = T[..., :3, 3]
    return make_transform(R_t, -np.einsum("...ij,...j->...i", R_t, t))


def se3_compose(T_ab: np.ndarray, T_bc: np.ndarray) -> np.ndarray:
    """``T_ac = T_ab @ T_bc`` for ``[..., 4, 4]`` transforms."""
    return np.asarray(T_ab, dtype=np.float64) @ np.asarray(T_bc, dtype=np.float64)


def relative_pose(T_wa: np.ndarray, T_wb: np.ndarray) -> np.ndarray:
    """Pose of frame b in frame a: ``T_ab = inv(T_wa) @ T_wb``. ``[..., 4, 4]``."""
    return se3_compose(se3_inverse(T_wa), T_wb)


# ----------------------------------------------------------------------------- rotations


def quat_to_matrix(q_xyzw: np.ndarray) -> np.ndarray:
    """Rotation matrices ``[..., 3, 3]`` from quaternions ``[..., 4]`` in ROS order (x, y, z, w).

    The quaternion is normalised first; a zero quaternion raises ``ValueError``.
    """
    q = np.asarray(q_xyzw, dtype=np.float64)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    if np.any(n < 1e-12):
        raise ValueError("zero-norm quaternion")
    x, y, z, w = np.moveaxis(q / n, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
            np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
            np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def matrix_to_quat(R: np.ndarray) -> np.ndarray:
    """Quaternions ``[..., 4]`` (x, y, z, w), w >= 0, from rotation matrices ``[..., 3, 3]``.

    Uses the numerically stable branch on the largest of (w, x, y, z) (Shepperd's method).
    """
    R = np.asarray(R, dtype=np.float64)
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    # 4 * (w^2, x^2, y^2, z^2)
    squares = np.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1
    )
    best = np.argmax(squares, axis=-1)
    s = 2.0 * np.sqrt(np.maximum(np.take_along_axis(squares, best[..., None], -1)[..., 0], 1e-300))
    r21_m_r12 = R[..., 2, 1] - R[..., 1, 2]
    r02_m_r20 = R[..., 0, 2] - R[..., 2, 0]
    r10_m_r01 = R[..., 1, 0] - R[..., 0, 1]
    r10_p_r01 = R[..., 1, 0] + R[..., 0, 1]
    r02_p_r20 = R[..., 0, 2] + R[..., 2, 0]
    r21_p_r12 = R[..., 2, 1] + R[..., 1, 2]
    candidates = np.stack(
        [
            np.stack([r21_m_r12 / s, r02_m_r20 / s, r10_m_r01 / s, s / 4], -1),  # w largest
            np.stack([s / 4, r10_p_r01 / s, r02_p_r20 / s, r21_m_r12 / s], -1),  # x largest
            np.stack([r10_p_r01 / s, s / 4, r21_p_r12 / s, r02_m_r20 / s], -1),  # y largest
            np.stack([r02_p_r20 / s, r21_p_r12 / s, s / 4, r10_m_r01 / s], -1),  # z largest
        ],
        -2,
    )
    q = np.take_along_axis(candidates, best[..., None, None], -2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., 3:4] < 0, -q, q)


def axis_angle_to_matrix(axis: np.ndarray, angle: float | np.ndarray) -> np.ndarray:
    """Rotation ``[..., 3, 3]`` by ``angle`` radians about ``axis [..., 3]`` (Rodrigues)."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    half = np.asarray(angle, dtype=np.float64)[..., None] / 2.0
    return quat_to_matrix(np.concatenate([a * np.sin(half), np.cos(half)], -1))


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 0.0, 1.0)) -> np.ndarray:
    """World-from-camera ``T_wc [4, 4]`` of an OpenCV camera at ``eye`` looking at ``target``.

    ``up`` is the world's up direction; the camera's y axis (down) points away from it.
    """
    eye = np.asarray(eye, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("look_at: viewing direction is parallel to `up`")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return make_transform(np.stack([x, y, z], axis=1), eye)


# ----------------------------------------------------------------------------- pose metrics


def rotation_angle_deg(R_a: np.ndarray, R_b: np.ndarray) -> np.ndarray:
    """Geodesic angle in degrees between rotations ``[..., 3, 3]`` (0..180)."""
    R = np.swapaxes(np.asarray(R_a, dtype=np.float64), -1, -2) @ np.asarray(R_b, dtype=np.float64)
    cos = (np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.rad2deg(np.arccos(np.clip(cos, -1.0, 1.0)))


def translation_angle_deg(t_a: np.ndarray, t_b: np.ndarray, ambiguity: bool = True, eps: float = 1e-12) -> np.ndarray:
    """Angle in degrees between translation directions ``[..., 3]``.

    With ``ambiguity`` (the VGGT / VidFM3D protocol), the sign of the direction is not scored:
    the error is ``min(angle, 180 - angle)``. A zero-length translation gives 90 (no direction).
    """
    a = np.asarray(t_a, dtype=np.float64)
    b = np.asarray(t_b, dtype=np.float64)
    na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)
    cos = np.sum(a * b, axis=-1) / np.maximum(na * nb, eps)
    angle = np.rad2deg(np.arccos(np.clip(cos, -1.0, 1.0)))
    angle = np.where((na < eps) | (nb < eps), 90.0, angle)
    return np.minimum(angle, 180.0 - angle) if ambiguity else angle


def pairwise_relative_pose_errors(T_wc_pred: np.ndarray, T_wc_gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation and translation-direction errors (degrees) over all ordered pairs i != j.

    Args:
        T_wc_pred, T_wc_gt: ``[S, 4, 4]`` camera poses of one clip, each in its own world frame
            (only relative poses are compared, so the two worlds need not agree).
    Returns:
        ``(r_err [P], t_err [P])`` with P = S * (S - 1).
    """
    T_wc_pred = np.asarray(T_wc_pred, dtype=np.float64)
    T_wc_gt = np.asarray(T_wc_gt, dtype=np.float64)
    if T_wc_pred.shape != T_wc_gt.shape or T_wc_pred.shape[-2:] != (4, 4):
        raise ValueError(f"pose arrays must both be [S, 4, 4], got {T_wc_pred.shape} and {T_wc_gt.shape}")
    s = T_wc_pred.shape[0]
    i, j = np.nonzero(~np.eye(s, dtype=bool))
    rel_pred = relative_pose(T_wc_pred[i], T_wc_pred[j])
    rel_gt = relative_pose(T_wc_gt[i], T_wc_gt[j])
    r_err = rotation_angle_deg(rel_pred[:, :3, :3], rel_gt[:, :3, :3])
    t_err = translation_angle_deg(rel_pred[:, :3, 3], rel_gt[:, :3, 3])
    return r_err, t_err


def pose_auc(r_err_deg: np.ndarray, t_err_deg: np.ndarray, max_threshold_deg: int = 30) -> float:
    """AUC@τ of relative pose (the VGGT / VidFM3D protocol), in [0, 1].

    The error of a pair is ``max(r_err, t_err)``; the AUC is the mean, over integer thresholds
    k = 1..τ, of the fraction of pairs whose error is below k (a cumulative histogram with 1°
    bins). All-zero errors give 1.0; errors all >= τ give 0.0.
    """
    err = np.maximum(np.asarray(r_err_deg, dtype=np.float64), np.asarray(t_err_deg, dtype=np.float64)).ravel()
    if err.size == 0:
        raise ValueError("pose_auc needs at least one pair")
    err = np.where(np.isfinite(err), err, np.inf)
    hist, _ = np.histogram(err, bins=np.arange(max_threshold_deg + 1))
    return float(np.mean(np.cumsum(hist / err.size)))


# ----------------------------------------------------------------------------- alignment


def umeyama_alignment(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity (Umeyama 1991) mapping ``src`` onto ``dst``.

    Args:
        src, dst: ``[N, 3]`` corresponding points, N >= 3 and not collinear.
        with_scale: solve Sim(3); if False, SE(3) with scale fixed to 1.
    Returns:
        ``(s, R [3, 3], t [3])`` minimising ``sum ||dst - (s R src + t)||^2``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or src.shape[0] < 3:
        raise ValueError(f"need matching [N>=3, 3] arrays, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / src.shape[0]
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1.0
    R = U @ S @ Vt
    var_s = np.mean(np.sum(xs**2, axis=1))
    if with_scale and var_s <= 1e-18:
        raise ValueError("the source points have no spread (all the same point): a Sim(3) scale is undefined")
    s = float(np.trace(np.diag(D) @ S) / var_s) if with_scale else 1.0
    t = mu_d - s * R @ mu_s
    return s, R, t


def scale_alignment(src: np.ndarray, dst: np.ndarray) -> float:
    """Least-squares scale ``s`` minimising ``sum ||dst - s * src||^2`` over points ``[..., 3]`` or values."""
    src = np.asarray(src, dtype=np.float64).ravel()
    dst = np.asarray(dst, dtype=np.float64).ravel()
    denom = float(src @ src)
    if denom <= 0:
        raise ValueError("scale_alignment: source is all zeros")
    return float(src @ dst) / denom


# ----------------------------------------------------------------------------- pose encoding

POSE_ENCODING_DIM = 9
"""``[tx, ty, tz, qx, qy, qz, qw, fov_h, fov_w]``: VGGT's absT_quaR_FoV layout (fov in radians)."""


def pose_to_encoding(T_ref_cam: np.ndarray, K: np.ndarray, height: int, width: int) -> np.ndarray:
    """Encode poses relative to the reference frame and intrinsics as ``[..., 9]`` float32.

    Args:
        T_ref_cam: ``[..., 4, 4]`` pose of each camera in the reference camera's frame,
            ``inv(T_wc_ref) @ T_wc`` (identity for the reference itself).
        K: ``[..., 3, 3]`` intrinsics for an image of ``height x width``.
    Returns:
        ``[t (3), quaternion x, y, z, w (4), fov_h, fov_w (2, radians)]``.
    """
    T = np.asarray(T_ref_cam, dtype=np.float64)
    fov_w, fov_h = fov_from_intrinsics(K, width, height)
    return np.concatenate(
        [T[..., :3, 3], matrix_to_quat(T[..., :3, :3]), np.stack([fov_h, fov_w], -1)], -1
    ).astype(np.float32)


def encoding_to_pose(pose_enc: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`pose_to_encoding`: ``(T_ref_cam [..., 4, 4], K [..., 3, 3])``.

    The principal point is the image centre (the encoding carries no other).
    """
    enc = np.asarray(pose_enc, dtype=np.float64)
    T = make_transform(quat_to_matrix(enc[..., 3:7]), enc[..., :3])
    fy = 0.5 * height / np.tan(enc[..., 7] / 2.0)
    fx = 0.5 * width / np.tan(enc[..., 8] / 2.0)
    K = np.zeros(enc.shape[:-1] + (3, 3))
    K[..., 0, 0], K[..., 1, 1] = fx, fy
    K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = width / 2.0, height / 2.0, 1.0
    return T, K


def quat_to_axis_angle(q_xyzw: np.ndarray) -> np.ndarray:
    """Axis-angle vectors ``[..., 3]`` (axis * angle, angle in [0, pi]) from quaternions (x, y, z, w)."""
    q = np.asarray(q_xyzw, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    q = np.where(q[..., 3:4] < 0, -q, q)
    sin_half = np.linalg.norm(q[..., :3], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(sin_half, q[..., 3:4])
    scale = np.where(sin_half > 1e-12, angle / np.maximum(sin_half, 1e-12), 2.0)  # small-angle limit
    return q[..., :3] * scale


def axis_angle_to_quat(rotvec: np.ndarray) -> np.ndarray:
    """Unit quaternions ``[..., 4]`` (x, y, z, w) from axis-angle vectors ``[..., 3]`` (axis * angle, rad).

    The inverse of :func:`quat_to_axis_angle` up to the quaternion's sign; a zero vector gives identity.
    """
    v = np.asarray(rotvec, dtype=np.float64)
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    scale = np.where(angle > 1e-12, np.sin(angle / 2.0) / np.maximum(angle, 1e-12), 0.5)  # small-angle limit
    return np.concatenate([v * scale, np.cos(angle / 2.0)], -1)
