"""Corners (FAST, bucketed in a grid) and their frame-to-frame tracks (pyramidal Lucas-Kanade with a
forward-backward check). Coordinates are ``uv`` (half-pixel convention, :mod:`vega_ros.geometry`)."""

from __future__ import annotations

import cv2
import numpy as np

from vega_ros.odometry.pose_math import cv_to_uv, uv_to_cv
from vega_ros.odometry.settings import OdometrySettings


def detect_corners(gray: np.ndarray, existing_uv: np.ndarray, count: int, s: OdometrySettings) -> np.ndarray:
    """Up to ``count`` new FAST corners ``uv [M, 2]``, strongest first within each grid cell, spread
    over the ``grid_cols x grid_rows`` cells and at least ``min_feature_distance_px`` from
    ``existing_uv [N, 2]`` and from each other. Corners sit on pixel centres (integer OpenCV coordinates)."""
    if count <= 0:
        return np.zeros((0, 2))
    h, w = gray.shape
    mask = np.zeros((h, w), np.uint8)
    b = s.border_px
    mask[b:h - b, b:w - b] = 255
    radius = max(int(round(s.min_feature_distance_px)), 1)
    for x, y in uv_to_cv(existing_uv).round().astype(int):
        cv2.circle(mask, (int(x), int(y)), radius, 0, -1)
    keypoints = ()
    for threshold in (s.fast_threshold, max(s.fast_threshold // 2, 1)):
        keypoints = cv2.FastFeatureDetector_create(threshold=threshold, nonmaxSuppression=True).detect(gray, mask)
        if len(keypoints) >= count:
            break
    if not keypoints:
        return np.zeros((0, 2))
    pts = np.array([k.pt for k in keypoints], dtype=np.float64)
    response = np.array([k.response for k in keypoints])
    cell = (np.minimum((pts[:, 0] * s.grid_cols / w).astype(int), s.grid_cols - 1)
            + s.grid_cols * np.minimum((pts[:, 1] * s.grid_rows / h).astype(int), s.grid_rows - 1))
    # round-robin over cells, strongest first in each: the k-th best of every cell before any (k+1)-th
    order = np.lexsort((-response, cell))
    rank = np.empty(len(order), int)
    cells_sorted = cell[order]
    starts = np.r_[0, np.flatnonzero(np.diff(cells_sorted)) + 1]
    for a, z in zip(starts, np.r_[starts[1:], len(order)]):
        rank[order[a:z]] = np.arange(z - a)
    candidates = pts[np.lexsort((-response, rank))]
    chosen: list[np.ndarray] = []
    occupied = np.zeros((h, w), bool)
    for p in candidates:
        x, y = int(round(p[0])), int(round(p[1]))
        if occupied[y, x]:
            continue
        chosen.append(p)
        y0, y1, x0, x1 = max(y - radius, 0), min(y + radius + 1, h), max(x - radius, 0), min(x + radius + 1, w)
        occupied[y0:y1, x0:x1] = True
        if len(chosen) >= count:
            break
    return cv_to_uv(np.array(chosen))


def track_lk(prev_gray: np.ndarray, gray: np.ndarray, uv_prev: np.ndarray, s: OdometrySettings,
             uv_guess: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Track ``uv_prev [N, 2]`` from ``prev_gray`` into ``gray``.

    Returns ``(uv [N, 2], ok [N] bool)``: a track is kept when Lucas-Kanade converges both ways, the
    backward track returns within ``fb_max_error_px`` of its start, and the point stays inside the
    image. ``uv_guess`` (e.g. predicted from a motion prior) seeds the forward search.
    """
    n = len(uv_prev)
    if n == 0:
        return np.zeros((0, 2)), np.zeros(0, bool)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, s.lk_max_iterations, s.lk_epsilon)
    win = (s.lk_window_px, s.lk_window_px)
    p0 = uv_to_cv(uv_prev).reshape(-1, 1, 2)
    flags, guess = 0, None
    if uv_guess is not None:
        flags, guess = cv2.OPTFLOW_USE_INITIAL_FLOW, uv_to_cv(uv_guess).reshape(-1, 1, 2)
    p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev_gray, gray, p0, guess, winSize=win, maxLevel=s.lk_levels,
                                          criteria=criteria, flags=flags)
    p0b, st0, _ = cv2.calcOpticalFlowPyrLK(gray, prev_gray, p1, p0.copy(), winSize=win, maxLevel=s.lk_levels,
                                           criteria=criteria, flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
    uv = cv_to_uv(p1)
    fb = np.linalg.norm(p0b.reshape(-1, 2) - p0.reshape(-1, 2), axis=1)
    h, w = gray.shape
    ok = (st1.ravel() == 1) & (st0.ravel() == 1) & (fb <= s.fb_max_error_px) & np.all(np.isfinite(uv), 1)
    ok &= (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    return uv, ok


def refine_from_keyframe(kf_gray: np.ndarray, gray: np.ndarray, uv_kf: np.ndarray, uv: np.ndarray,
                         s: OdometrySettings) -> tuple[np.ndarray, np.ndarray]:
    """Re-align tracks ``uv [N, 2]`` against their keyframe patches at ``uv_kf [N, 2]`` (one
    Lucas-Kanade pass on the base level, seeded with ``uv``), so that frame-to-frame errors do not
    accumulate along the track. Returns ``(uv [N, 2], ok [N])``; a track whose refinement fails or
    moves it by more than ``2 * fb_max_error_px`` keeps its frame-to-frame position and ok = False."""
    if len(uv) == 0:
        return np.zeros((0, 2)), np.zeros(0, bool)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, s.lk_max_iterations, s.lk_epsilon)
    p1, st, _ = cv2.calcOpticalFlowPyrLK(kf_gray, gray, uv_to_cv(uv_kf).reshape(-1, 1, 2), uv_to_cv(uv).reshape(-1, 1, 2),
                                         winSize=(s.lk_window_px, s.lk_window_px), maxLevel=0, criteria=criteria,
                                         flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
    refined = cv_to_uv(p1)
    ok = (st.ravel() == 1) & np.all(np.isfinite(refined), 1)
    ok &= np.linalg.norm(refined - uv, axis=1) <= 2.0 * s.fb_max_error_px
    return np.where(ok[:, None], refined, uv), ok
