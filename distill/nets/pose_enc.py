"""Torch twins of :mod:`vega_ros.geometry`'s pose encoding (VGGT's absT_quaR_FoV layout).

``pose_enc [..., 9] = [tx, ty, tz, qx, qy, qz, qw, fov_h, fov_w]``: the pose of each camera in the
reference camera's frame (``T_ref_cam = inv(T_wc[0]) @ T_wc``), the rotation as a unit quaternion
in ROS order with w >= 0, and the fields of view in radians. ``tests/test_nets_pose_enc.py`` checks
every function here against the numpy original.
"""

from __future__ import annotations

import torch

POSE_ENCODING_DIM = 9


def se3_inverse(T: torch.Tensor) -> torch.Tensor:
    """Inverse of rigid transforms ``[..., 4, 4]`` (R^T, -R^T t)."""
    R_t = T[..., :3, :3].transpose(-1, -2)
    t = -(R_t @ T[..., :3, 3:4])
    bottom = T[..., 3:4, :]
    return torch.cat([torch.cat([R_t, t], -1), bottom], -2)


def relative_to_reference(T_wc: torch.Tensor) -> torch.Tensor:
    """``T_ref_cam [..., S, 4, 4] = inv(T_wc[..., 0]) @ T_wc`` (frame 0 is the reference)."""
    return se3_inverse(T_wc[..., :1, :, :]) @ T_wc


def quat_to_matrix(q_xyzw: torch.Tensor) -> torch.Tensor:
    """Rotation matrices ``[..., 3, 3]`` from quaternions ``[..., 4]`` (x, y, z, w), normalised first."""
    q = q_xyzw / q_xyzw.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    x, y, z, w = q.unbind(-1)
    rows = [
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        torch.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        torch.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ]
    return torch.stack(rows, -2)


def matrix_to_quat(R: torch.Tensor) -> torch.Tensor:
    """Quaternions ``[..., 4]`` (x, y, z, w), w >= 0, from ``R [..., 3, 3]`` (Shepperd's method, branch-free)."""
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    squares = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1
    )
    best = squares.argmax(-1, keepdim=True)
    s = 2.0 * torch.gather(squares, -1, best).clamp_min(1e-12).sqrt()  # [..., 1]
    r21_m_r12 = R[..., 2, 1] - R[..., 1, 2]
    r02_m_r20 = R[..., 0, 2] - R[..., 2, 0]
    r10_m_r01 = R[..., 1, 0] - R[..., 0, 1]
    r10_p_r01 = R[..., 1, 0] + R[..., 0, 1]
    r02_p_r20 = R[..., 0, 2] + R[..., 2, 0]
    r21_p_r12 = R[..., 2, 1] + R[..., 1, 2]
    s0 = s[..., 0]
    candidates = torch.stack(
        [
            torch.stack([r21_m_r12 / s0, r02_m_r20 / s0, r10_m_r01 / s0, s0 / 4], -1),
            torch.stack([s0 / 4, r10_p_r01 / s0, r02_p_r20 / s0, r21_m_r12 / s0], -1),
            torch.stack([r10_p_r01 / s0, s0 / 4, r21_p_r12 / s0, r02_m_r20 / s0], -1),
            torch.stack([r02_p_r20 / s0, r21_p_r12 / s0, s0 / 4, r10_m_r01 / s0], -1),
        ],
        -2,
    )  # [..., 4 candidates, 4]
    idx = best[..., None].expand(*best.shape[:-1], 1, 4)
    q = torch.gather(candidates, -2, idx)[..., 0, :]
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.where(q[..., 3:4] < 0, -q, q)


def fov_from_intrinsics(K: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fov_h, fov_w)`` in radians (vertical, horizontal) of ``K [..., 3, 3]``."""
    fov_w = 2.0 * torch.atan(0.5 * width / K[..., 0, 0])
    fov_h = 2.0 * torch.atan(0.5 * height / K[..., 1, 1])
    return fov_h, fov_w


def pose_to_encoding(T_ref_cam: torch.Tensor, K: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``[..., 9]`` encoding of poses in the reference frame ``[..., 4, 4]`` and intrinsics ``[..., 3, 3]``."""
    fov_h, fov_w = fov_from_intrinsics(K, height, width)
    return torch.cat(
        [T_ref_cam[..., :3, 3], matrix_to_quat(T_ref_cam[..., :3, :3]), torch.stack([fov_h, fov_w], -1)], -1
    )


def encoding_to_pose(pose_enc: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`pose_to_encoding`: ``(T_ref_cam [..., 4, 4], K [..., 3, 3])``, centred principal point."""
    R = quat_to_matrix(pose_enc[..., 3:7])
    t = pose_enc[..., :3, None]
    bottom = torch.zeros(pose_enc.shape[:-1] + (1, 4), dtype=pose_enc.dtype, device=pose_enc.device)
    bottom[..., 0, 3] = 1.0
    T = torch.cat([torch.cat([R, t], -1), bottom], -2)
    fy = 0.5 * height / torch.tan(pose_enc[..., 7] / 2.0)
    fx = 0.5 * width / torch.tan(pose_enc[..., 8] / 2.0)
    zeros, ones = torch.zeros_like(fx), torch.ones_like(fx)
    K = torch.stack(
        [
            torch.stack([fx, zeros, zeros + width / 2.0], -1),
            torch.stack([zeros, fy, zeros + height / 2.0], -1),
            torch.stack([zeros, zeros, ones], -1),
        ],
        -2,
    )
    return T, K
