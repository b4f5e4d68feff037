"""A picture of an estimated against a true camera trajectory (top view + side view), drawn with OpenCV
(matplotlib is not a runtime dependency)."""

from __future__ import annotations

import cv2
import numpy as np

from vega_ros import geometry

TRUE_BGR = (80, 200, 80)
EST_BGR = (60, 90, 240)


def anchor_to_first(T_wc_est: np.ndarray, T_wc_true: np.ndarray) -> np.ndarray:
    """The estimate ``[S, 4, 4]`` moved into the true world so that its first pose is the true first pose
    (the only alignment odometry gets: no rotation, translation or scale fitted)."""
    T_wc_est = np.asarray(T_wc_est, dtype=np.float64)
    return (np.asarray(T_wc_true, dtype=np.float64)[0] @ geometry.se3_inverse(T_wc_est[0]))[None] @ T_wc_est


def _panel(est: np.ndarray, true: np.ndarray, axes: tuple[int, int], names: tuple[str, str], title: str,
           size: int) -> np.ndarray:
    img = np.full((size, size, 3), 255, np.uint8)
    both = np.concatenate([est[:, axes], true[:, axes]])
    lo, hi = both.min(0), both.max(0)
    span = float(max(np.max(hi - lo), 1e-6)) * 1.15
    centre = (lo + hi) / 2.0
    margin = 40
    scale = (size - 2 * margin) / span

    def px(p: np.ndarray) -> np.ndarray:
        q = (p[:, axes] - centre) * scale
        return np.stack([size / 2 + q[:, 0], size / 2 - q[:, 1]], 1).round().astype(np.int32)  # up is +second axis

    cv2.rectangle(img, (margin, margin), (size - margin, size - margin), (220, 220, 220), 1)
    for pts, colour in ((true, TRUE_BGR), (est, EST_BGR)):
        cv2.polylines(img, [px(pts).reshape(-1, 1, 2)], False, colour, 2, cv2.LINE_AA)
        cv2.circle(img, tuple(int(v) for v in px(pts[:1])[0]), 5, colour, -1, cv2.LINE_AA)
    bar_m = 10 ** np.floor(np.log10(span / 2))
    x0, y0 = margin, size - 15
    cv2.line(img, (x0, y0), (x0 + int(bar_m * scale), y0), (0, 0, 0), 2)
    cv2.putText(img, f"{bar_m:g} m", (x0 + int(bar_m * scale) + 6, y0 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    cv2.putText(img, f"{title} ({names[0]} right, {names[1]} up)", (margin, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    return img


def plot_trajectories(T_wc_est: np.ndarray, T_wc_true: np.ndarray, caption: str = "", size: int = 420) -> np.ndarray:
    """BGR image ``[size + 40, 2 * size, 3]`` uint8: top view (world x-y) and side view (world x-z) of the
    true (green) and estimated (red, :func:`anchor_to_first`) camera positions, dots at the start."""
    T_wc_est = np.asarray(T_wc_est, dtype=np.float64)
    T_wc_true = np.asarray(T_wc_true, dtype=np.float64)
    if T_wc_est.shape != T_wc_true.shape or T_wc_est.ndim != 3 or len(T_wc_est) < 2:
        raise ValueError(f"plot_trajectories needs two [S>=2, 4, 4] arrays, got {T_wc_est.shape} and {T_wc_true.shape}")
    est = anchor_to_first(T_wc_est, T_wc_true)[:, :3, 3]
    true = T_wc_true[:, :3, 3]
    top = _panel(est, true, (0, 1), ("x", "y"), "top view", size)
    side = _panel(est, true, (0, 2), ("x", "z"), "side view", size)
    legend = np.full((40, 2 * size, 3), 255, np.uint8)
    cv2.putText(legend, "true", (40, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.55, TRUE_BGR, 2)
    cv2.putText(legend, "estimated", (100, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.55, EST_BGR, 2)
    cv2.putText(legend, caption, (220, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
    return np.concatenate([np.concatenate([top, side], 1), legend], 0)
