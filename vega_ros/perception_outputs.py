"""What the perception node publishes, as arrays: depth at the output size, its camera_info, the cloud.

Pure numpy / OpenCV (no per-pixel Python), so the node's overhead per frame stays a small share
of the model's time and a test or benchmark can call these without ROS.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

from vega_ros import geometry
from vega_ros.image_fit import Window, to_image


@dataclass
class OutputFrame:
    """One frame's outputs at the resolution they are published at."""

    depth: np.ndarray  # [H, W] float32 metres, 0 = invalid
    depth_conf: np.ndarray  # [H, W] float32
    rgb: np.ndarray  # [H, W, 3] uint8, the colours of the cloud
    K: np.ndarray  # [3, 3] intrinsics of this H x W


def strided_intrinsics(K: np.ndarray, stride: int) -> np.ndarray:
    """Intrinsics of the pixel subgrid ``[::stride, ::stride]`` (half-pixel convention).

    Pixel j of the subgrid is pixel ``stride * j`` of the image, so its centre u' = j + 0.5 sits at
    u = stride * u' - (stride - 1) / 2: fx' = fx / stride, cx' = (cx + (stride - 1) / 2) / stride.
    """
    K2 = np.array(K, dtype=np.float64, copy=True)
    K2[:2, :3] /= stride
    K2[0, 2] = (K[0, 2] + (stride - 1) / 2.0) / stride
    K2[1, 2] = (K[1, 2] + (stride - 1) / 2.0) / stride
    return K2


def output_frame(depth: np.ndarray, depth_conf: np.ndarray, K_model: np.ndarray, rgb: np.ndarray, K_input: np.ndarray,
                 resolution: str, window: Window | None = None) -> OutputFrame:
    """Depth and confidence at the ``resolution`` they are published at ('input' or 'model').

    Args:
        depth, depth_conf: ``[h, w]`` float32 at the model's size; ``K_model [3, 3]`` for it.
        rgb: ``[H, W, 3]`` uint8 camera image; ``K_input [3, 3]`` its intrinsics.
        resolution: 'input' puts depth back onto the image (nearest: no depth mixed across edges;
            0 = no measurement outside ``window``), 'model' resizes the image's ``window`` (area) to the depth.
        window: the part of the image the model saw (``vega_ros.image_fit``); None = all of it.
    """
    h, w = depth.shape
    size = (rgb.shape[1], rgb.shape[0])
    window = window or Window(0, 0, *size)
    if resolution == "input":
        depth, depth_conf = to_image(depth, window, size), to_image(depth_conf, window, size)
        return OutputFrame(depth, depth_conf, rgb, np.asarray(K_input, dtype=np.float64))
    if resolution == "model":
        if not window.covers(size):
            rgb = rgb[window.y0:window.y0 + window.height, window.x0:window.x0 + window.width]
        if rgb.shape[:2] != (h, w):
            rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        return OutputFrame(depth, depth_conf, np.ascontiguousarray(rgb), np.asarray(K_model, dtype=np.float64))
    raise ValueError(f"output resolution must be 'input' or 'model', got '{resolution}'")


@functools.lru_cache(maxsize=8)
def _ray_factors(h: int, w: int, K_bytes: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel of an ``h x w`` image with intrinsics ``K``: (x / z, y / z) as flat float64 arrays (half-pixel centres)."""
    K = np.frombuffer(K_bytes, dtype=np.float64).reshape(3, 3)
    u, v = geometry.pixel_grid(h, w)
    ay = (v - K[1, 2]) / K[1, 1]
    ax = (u - K[0, 2] - K[0, 1] * ay) / K[0, 0]
    return ax.reshape(-1), ay.reshape(-1)


def cloud_arrays(out: OutputFrame, stride: int, max_range_m: float, min_confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Back-project every ``stride``-th pixel of ``out.depth``: ``(points [M, 3] float32 m, rgb [M, 3] uint8)``.

    Points with no depth, beyond ``max_range_m`` (0 = no limit) or with confidence below
    ``min_confidence`` are left out. The same points as :func:`vega_ros.geometry.depth_to_points`
    on the subgrid; the per-pixel ray factors are cached per size and intrinsics.
    """
    if stride < 1:
        raise ValueError(f"cloud stride must be >= 1, got {stride}")
    z = out.depth[::stride, ::stride]
    h, w = z.shape
    z = z.reshape(-1)
    keep = np.isfinite(z) & (z > 0)
    if max_range_m > 0:
        keep &= z <= max_range_m
    if min_confidence > 0:
        keep &= out.depth_conf[::stride, ::stride].reshape(-1) >= min_confidence
    ax, ay = _ray_factors(h, w, np.ascontiguousarray(strided_intrinsics(out.K, stride), dtype=np.float64).tobytes())
    zk = z[keep].astype(np.float64)
    pts = np.empty((zk.size, 3), np.float32)
    pts[:, 0] = ax[keep] * zk
    pts[:, 1] = ay[keep] * zk
    pts[:, 2] = zk
    return pts, out.rgb[::stride, ::stride].reshape(-1, 3)[keep]
