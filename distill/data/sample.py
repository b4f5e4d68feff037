"""The probe's input sample: S frames of one clip, the first the reference, with GT point maps.

Every data source (LIBERO renders, CO3Dv2, DL3DV, tests) returns the same dict, built by
:func:`make_sample`. Keys and shapes (S frames of H x W)::

    images      float32 [S, 3, H, W]  RGB in [0, 1]
    depth       float32 [S, H, W]     z-depth in metres, 0 = invalid
    valid       bool    [S, H, W]     depth > 0 (and finite)
    K           float32 [S, 3, 3]     intrinsics, pixels; pixel (i, j) centre at (j + 0.5, i + 0.5)
    T_wc        float32 [S, 4, 4]     world-from-camera, OpenCV axes (x right, y down, z forward)
    points_ref  float32 [S, H, W, 3]  each frame's depth back-projected into the reference (frame 0)
                                      camera frame, metres; 0 where invalid
    frame_ids   int64   [S]           frame numbers in the clip
    clip_id     str
"""

from __future__ import annotations

import numpy as np
import torch

from vega_ros.geometry import (
    depth_to_points,
    relative_pose,
    transform_points,
    valid_depth_mask,
)

SAMPLE_KEYS = ("images", "depth", "valid", "K", "T_wc", "points_ref", "frame_ids", "clip_id")


def points_in_reference(depth: np.ndarray, K: np.ndarray, T_wc: np.ndarray) -> np.ndarray:
    """GT point maps ``[S, H, W, 3]`` float32 in frame 0's camera frame (0 where depth is invalid).

    Args:
        depth: ``[S, H, W]`` metres; K: ``[S, 3, 3]``; T_wc: ``[S, 4, 4]`` world-from-camera.
    """
    depth = np.asarray(depth)
    out = np.zeros(depth.shape + (3,), np.float32)
    for s in range(depth.shape[0]):
        T_ref_s = relative_pose(T_wc[0], T_wc[s])
        p = transform_points(T_ref_s, depth_to_points(depth[s], K[s]).astype(np.float64))
        valid = valid_depth_mask(depth[s])
        out[s][valid] = p[valid]
    return out


def make_sample(
    images: np.ndarray,
    depth: np.ndarray,
    K: np.ndarray,
    T_wc: np.ndarray,
    frame_ids: np.ndarray | list[int] | None = None,
    clip_id: str = "",
) -> dict:
    """Build the probe sample dict (see module docstring) from numpy arrays.

    Args:
        images: ``[S, H, W, 3]`` uint8 RGB, or ``[S, H, W, 3]`` / ``[S, 3, H, W]`` float in [0, 1].
        depth: ``[S, H, W]`` z-depth in metres (0 / NaN / negative = invalid).
        K: ``[S, 3, 3]`` or one ``[3, 3]`` for all frames. T_wc: ``[S, 4, 4]`` world-from-camera, OpenCV axes.
        frame_ids: ``[S]`` frame numbers (default 0..S-1). clip_id: a name for the clip.
    Frame 0 is the reference frame of ``points_ref``.
    """
    depth = np.asarray(depth, dtype=np.float32)
    if depth.ndim != 3:
        raise ValueError(f"depth must be [S, H, W], got {depth.shape}")
    S, H, W = depth.shape
    images = np.asarray(images)
    if images.dtype == np.uint8:
        img = images.astype(np.float32) / 255.0
    else:
        img = images.astype(np.float32)
    if img.shape == (S, H, W, 3):
        img = img.transpose(0, 3, 1, 2)
    if img.shape != (S, 3, H, W):
        raise ValueError(f"images must be [S, H, W, 3] or [S, 3, H, W] matching depth {depth.shape}, got {images.shape}")
    K = np.asarray(K, dtype=np.float64)
    K = np.broadcast_to(K, (S, 3, 3)) if K.shape == (3, 3) else K
    T_wc = np.asarray(T_wc, dtype=np.float64)
    if K.shape != (S, 3, 3) or T_wc.shape != (S, 4, 4):
        raise ValueError(f"K must be [S, 3, 3] and T_wc [S, 4, 4] with S = {S}, got {K.shape} and {T_wc.shape}")
    valid = valid_depth_mask(depth)
    depth = np.where(valid, depth, 0.0).astype(np.float32)
    frame_ids = np.arange(S) if frame_ids is None else np.asarray(frame_ids)
    if frame_ids.shape != (S,):
        raise ValueError(f"frame_ids must be [S] = [{S}], got {frame_ids.shape}")
    return {
        "images": torch.from_numpy(np.ascontiguousarray(np.clip(img, 0.0, 1.0))),
        "depth": torch.from_numpy(depth),
        "valid": torch.from_numpy(valid),
        "K": torch.from_numpy(np.ascontiguousarray(K, dtype=np.float32)),
        "T_wc": torch.from_numpy(np.ascontiguousarray(T_wc, dtype=np.float32)),
        "points_ref": torch.from_numpy(points_in_reference(depth, K, T_wc)),
        "frame_ids": torch.from_numpy(frame_ids.astype(np.int64)),
        "clip_id": str(clip_id),
    }


def sample_frame_ids(n_frames: int, num: int, min_gap: int, rng: np.random.Generator) -> np.ndarray:
    """``num`` sorted frame indices in ``[0, n_frames)``, consecutive ones at least ``min_gap`` apart.

    The first is the reference. Uniform over all valid sets (stars and bars on the slack).
    Raises ``ValueError`` if the clip is too short: needs ``n_frames >= (num - 1) * min_gap + 1``.
    """
    if num < 1 or min_gap < 1:
        raise ValueError("num and min_gap must be >= 1")
    slack = n_frames - 1 - (num - 1) * min_gap
    if slack < 0:
        raise ValueError(f"a clip of {n_frames} frames cannot hold {num} frames {min_gap} apart")
    # choose num non-negative extra gaps (first offset + num-1 extras) summing to <= slack
    cuts = np.sort(rng.choice(slack + num, num, replace=False))
    extras = np.diff(np.concatenate([[-1], cuts])) - 1  # num values >= 0, total <= slack
    return np.cumsum(extras + np.r_[0, np.full(num - 1, min_gap)]).astype(np.int64)
