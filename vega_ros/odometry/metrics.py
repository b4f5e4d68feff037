"""Trajectory scores used by the odometry bench and the demo: ATE without alignment, path length, AUC@30."""

from __future__ import annotations

import numpy as np

from vega_ros import geometry


def path_length_m(T_wc: np.ndarray) -> float:
    """Length (m) of the polyline through the camera positions of ``T_wc [S, 4, 4]``."""
    p = np.asarray(T_wc, dtype=np.float64)[:, :3, 3]
    return float(np.sum(np.linalg.norm(np.diff(p, axis=0), axis=1)))


def to_first_camera(T_wc: np.ndarray) -> np.ndarray:
    """Poses ``[S, 4, 4]`` re-expressed in the first camera's frame (the odometry world)."""
    T_wc = np.asarray(T_wc, dtype=np.float64)
    return geometry.se3_inverse(T_wc[0])[None] @ T_wc


def ate_rmse_m(T_wc_est: np.ndarray, T_wc_true: np.ndarray) -> float:
    """RMSE (m) of camera positions with no alignment at all: both trajectories are put in their
    first camera's frame (where odometry starts) and compared as they are, scale included."""
    est, true = to_first_camera(T_wc_est), to_first_camera(T_wc_true)
    if est.shape != true.shape:
        raise ValueError(f"trajectories differ in shape: {est.shape} vs {true.shape}")
    return float(np.sqrt(np.mean(np.sum((est[:, :3, 3] - true[:, :3, 3]) ** 2, axis=1))))


def ate_percent(T_wc_est: np.ndarray, T_wc_true: np.ndarray) -> float:
    """:func:`ate_rmse_m` as a percentage of the true path length."""
    length = path_length_m(T_wc_true)
    if length <= 0:
        raise ValueError("ate_percent: the true path has zero length")
    return 100.0 * ate_rmse_m(T_wc_est, T_wc_true) / length


def pair_indices(num_frames: int, max_frames: int = 24) -> np.ndarray:
    """Evenly spaced frame indices (at most ``max_frames``) whose ordered pairs score relative pose;
    the demo summary's choice, so that numbers from the bench and the demo compare."""
    return np.unique(np.linspace(0, num_frames - 1, min(num_frames, max_frames)).astype(int))


def relative_pose_auc30(T_wc_est: np.ndarray, T_wc_true: np.ndarray, max_frames: int = 24) -> float:
    """AUC@30 of relative pose over all ordered pairs of :func:`pair_indices` frames."""
    idx = pair_indices(len(T_wc_true), max_frames)
    r_err, t_err = geometry.pairwise_relative_pose_errors(np.asarray(T_wc_est)[idx], np.asarray(T_wc_true)[idx])
    return geometry.pose_auc(r_err, t_err, 30)
