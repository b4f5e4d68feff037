"""Fit real-dataset frames to a fixed probe size: centre-crop to the aspect ratio, then resize; K follows exactly."""

from __future__ import annotations

import cv2
import numpy as np

from vega_ros.geometry import crop_intrinsics, resize_intrinsics


def resample_depth(depth: np.ndarray, size_hw: tuple[int, int], edge_rel: float = 0.05) -> np.ndarray:
    """Resize z-depth ``[H, W]`` (metres, 0 invalid) to ``size_hw`` so each value belongs to its pixel centre.

    Output pixel (i, j) samples the source at its own centre, ``((j + 0.5) W / w - 0.5, (i + 0.5) H / h - 0.5)``
    in source pixel-centre coordinates, by bilinear interpolation of *inverse* depth (exact on planes).
    Where one of the four source neighbours is invalid or they differ by more than ``edge_rel``
    (a depth edge), the output is invalid (0). Nearest-neighbour resizing would instead pair a depth
    with a ray up to half a source pixel away.
    """
    H, W = depth.shape
    h, w = size_hw
    y = (np.arange(h) + 0.5) * (H / h) - 0.5
    x = (np.arange(w) + 0.5) * (W / w) - 0.5
    y = np.clip(y, 0, H - 1)
    x = np.clip(x, 0, W - 1)
    y0 = np.minimum(np.floor(y).astype(int), H - 2) if H > 1 else np.zeros(h, int)
    x0 = np.minimum(np.floor(x).astype(int), W - 2) if W > 1 else np.zeros(w, int)
    fy = (y - y0)[:, None]
    fx = (x - x0)[None, :]
    y1 = np.minimum(y0 + 1, H - 1)
    x1 = np.minimum(x0 + 1, W - 1)
    d = np.stack([depth[y0][:, x0], depth[y0][:, x1], depth[y1][:, x0], depth[y1][:, x1]], 0).astype(np.float64)
    wts = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx], 0)
    used = wts > 1e-12
    valid_nb = (d > 0) & np.isfinite(d)
    ok = np.all(valid_nb | ~used, 0)
    d_used_max = np.max(np.where(used, d, -np.inf), 0)
    d_used_min = np.min(np.where(used & valid_nb, d, np.inf), 0)
    ok &= d_used_max - d_used_min <= edge_rel * d_used_min
    inv = np.sum(np.where(used & valid_nb, wts / np.where(valid_nb, d, 1.0), 0.0), 0)
    out = np.where(ok & (inv > 0), 1.0 / np.where(inv > 0, inv, 1.0), 0.0)
    return out.astype(np.float32)


def fit_frame(rgb: np.ndarray, depth: np.ndarray, K: np.ndarray, size_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre-crop ``rgb [H, W, 3]`` / ``depth [H, W]`` (metres, 0 invalid) to the aspect of ``size_hw``, resize.

    RGB is resized with area averaging, depth with :func:`resample_depth` (each value at its pixel centre).
    Returns ``(rgb [h, w, 3] uint8, depth [h, w] float32, K [3, 3] float64)`` with ``(h, w) = size_hw``.
    The crop is whole pixels, so under the half-pixel convention K shifts by exactly the crop offset,
    and the resize scales K by the size ratio.
    """
    h_out, w_out = size_hw
    H, W = depth.shape
    if rgb.shape[:2] != (H, W):
        raise ValueError(f"rgb {rgb.shape} and depth {depth.shape} differ in size")
    scale = min(H / h_out, W / w_out)
    h_crop, w_crop = min(H, round(h_out * scale)), min(W, round(w_out * scale))
    y0, x0 = (H - h_crop) // 2, (W - w_crop) // 2
    rgb = rgb[y0 : y0 + h_crop, x0 : x0 + w_crop]
    depth = depth[y0 : y0 + h_crop, x0 : x0 + w_crop]
    K = resize_intrinsics(crop_intrinsics(K, x0, y0), (w_crop, h_crop), (w_out, h_out))
    if (h_crop, w_crop) != (h_out, w_out):
        rgb = cv2.resize(rgb, (w_out, h_out), interpolation=cv2.INTER_AREA)
        depth = resample_depth(depth, (h_out, w_out))
    return np.ascontiguousarray(rgb), depth.astype(np.float32), K
