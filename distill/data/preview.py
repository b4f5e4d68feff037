"""Preview grid of rendered clips: RGB frames, colour-mapped depth, and a top view of the fused cloud."""

from __future__ import annotations

import cv2
import numpy as np

from vega_ros.geometry import depth_to_world_points


def colorize_depth(depth: np.ndarray) -> np.ndarray:
    """``[H, W]`` metres -> ``[H, W, 3]`` uint8 RGB (turbo on inverse depth, near = red; invalid black)."""
    valid = depth > 0
    out = np.zeros(depth.shape + (3,), np.uint8)
    if not valid.any():
        return out
    inv = np.where(valid, 1.0 / np.where(valid, depth, 1.0), 0.0)
    lo, hi = np.percentile(inv[valid], [2, 98])
    t = np.clip((inv - lo) / max(hi - lo, 1e-9), 0, 1)
    bgr = cv2.applyColorMap((t * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    out[valid] = bgr[..., ::-1][valid]
    return out


def top_view(rgb: np.ndarray, depth: np.ndarray, K: np.ndarray, T_wc: np.ndarray, size: int = 128, span_m: float = 1.2) -> np.ndarray:
    """Orthographic top view ``[size, size, 3]`` uint8 of all frames' points fused in the world frame.

    Args:
        rgb: ``[T, H, W, 3]`` uint8; depth: ``[T, H, W]`` metres; K: ``[T, 3, 3]``; T_wc: ``[T, 4, 4]``.
        span_m: side of the square window (metres), centred on what the middle of frame 0 sees.
    World x points right in the image, world y up; the highest point wins each cell.
    """
    pts, cols = [], []
    for t in range(len(depth)):
        p = depth_to_world_points(depth[t], K[t], T_wc[t])
        ok = np.isfinite(p).all(-1)
        pts.append(p[ok])
        cols.append(rgb[t][ok])
    p = np.concatenate(pts).astype(np.float64)
    c = np.concatenate(cols)
    img = np.zeros((size, size, 3), np.uint8)
    if len(p) == 0:
        return img
    h, w = depth.shape[1:]
    centre_pts = depth_to_world_points(depth[0], K[0], T_wc[0])[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3].reshape(-1, 3)
    centre_pts = centre_pts[np.isfinite(centre_pts).all(-1)]
    centre = np.median(centre_pts[:, :2], 0) if len(centre_pts) else np.median(p[:, :2], 0)
    col = ((p[:, 0] - centre[0]) / span_m + 0.5) * size
    row = (0.5 - (p[:, 1] - centre[1]) / span_m) * size
    ok = (col >= 0) & (col < size) & (row >= 0) & (row < size)
    order = np.argsort(p[ok, 2])  # low first; later (higher) points overwrite
    img[row[ok][order].astype(int), col[ok][order].astype(int)] = c[ok][order]
    return img


def preview_grid(clips: list[dict], tile: int = 96) -> np.ndarray:
    """``[rows * tile, 5 * tile, 3]`` uint8 RGB: per clip, 3 RGB frames, depth of frame 0, fused top view."""
    rows = []
    for c in clips:
        T = len(c["rgb"])
        frames = [0, T // 2, T - 1]
        tiles = [c["rgb"][f] for f in frames] + [colorize_depth(c["depth"][0]), top_view(c["rgb"], c["depth"], c["K"], c["T_wc"], tile)]
        rows.append(np.concatenate([cv2.resize(t, (tile, tile), interpolation=cv2.INTER_AREA) for t in tiles], 1))
    return np.concatenate(rows, 0)
