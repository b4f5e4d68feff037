"""How a camera image reaches the model's fixed input size, and how depth comes back to the image.

The per-frame student is trained on square images with square pixels (fx = fy). A camera whose
aspect ratio differs (4:3, 16:9) is either

- ``crop``: the largest centred window of the model's aspect ratio, resized isotropically: the net
  sees undistorted geometry; depth outside the window is 0 (no measurement), or
- ``stretch``: the whole image resized per axis: every pixel gets a depth, but the net sees the
  scene squashed sideways and its metric scale drifts (``bench/bench_image_fit.py`` with
  ``models/vega-frame-v2`` on the demo's LIBERO scene: median predicted / true depth 1.02 square,
  1.18 at 4:3 and 1.27 at 16:9; AbsRel 0.102, 0.202 and 0.356, against 0.103 for both crops).

Windows are in source pixels: columns ``x0 .. x0 + width``, rows ``y0 .. y0 + height``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vega_ros import geometry

IMAGE_FITS = ("crop", "stretch")


@dataclass(frozen=True)
class Window:
    """The part of a camera image the model sees (source pixels)."""

    x0: int
    y0: int
    width: int
    height: int

    def covers(self, image_wh: tuple[int, int]) -> bool:
        """Whether the window is the whole ``(W, H)`` image."""
        return (self.x0, self.y0, self.width, self.height) == (0, 0, *image_wh)


def model_window(image_wh: tuple[int, int], model_wh: tuple[int, int], fit: str) -> Window:
    """The window of a ``(W, H)`` image that is resized to the model's ``(w, h)`` input.

    ``stretch``: the whole image. ``crop``: the largest centred window with the model's aspect ratio
    (the whole image when the ratios agree to a pixel).
    """
    if fit not in IMAGE_FITS:
        raise ValueError(f"image fit must be one of {IMAGE_FITS}, got {fit!r}")
    W, H = image_wh
    w, h = model_wh
    if W <= 0 or H <= 0 or w <= 0 or h <= 0:
        raise ValueError(f"sizes must be positive, got image {image_wh} and model {model_wh}")
    if fit == "stretch":
        return Window(0, 0, W, H)
    cw, ch = (W, int(round(W * h / w))) if W * h <= H * w else (int(round(H * w / h)), H)
    cw, ch = min(cw, W), min(ch, H)
    return Window((W - cw) // 2, (H - ch) // 2, cw, ch)


def resize_to_model(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """``rgb [h, w, 3]`` uint8 at the model's ``[height, width, 3]`` (area resize when shrinking; no copy when it fits)."""
    if rgb.shape[:2] == (height, width):
        return rgb
    interp = cv2.INTER_AREA if rgb.shape[0] > height else cv2.INTER_LINEAR
    return cv2.resize(rgb, (width, height), interpolation=interp)


def fit_to_model(rgb: np.ndarray, K: np.ndarray, model_hw: tuple[int, int], fit: str) -> tuple[np.ndarray, np.ndarray, Window]:
    """``rgb [H, W, 3]`` uint8 with intrinsics ``K [3, 3]`` -> (``[h, w, 3]`` uint8 at the model size,
    its intrinsics ``[3, 3]``, the source :class:`Window` it shows). Area resize when shrinking."""
    h, w = model_hw
    win = model_window((rgb.shape[1], rgb.shape[0]), (w, h), fit)
    view = rgb[win.y0:win.y0 + win.height, win.x0:win.x0 + win.width]
    K_view = geometry.crop_intrinsics(K, win.x0, win.y0)
    K_model = geometry.resize_intrinsics(K_view, (win.width, win.height), (w, h))
    return resize_to_model(np.ascontiguousarray(view), h, w), K_model, win


def to_image(values: np.ndarray, window: Window, image_wh: tuple[int, int]) -> np.ndarray:
    """``values [h, w]`` (depth, confidence) at the model size back onto the ``(W, H)`` image: resized
    (nearest: no depth mixed across edges) into ``window``, 0 (no measurement) outside it."""
    W, H = image_wh
    if window.covers(image_wh) and values.shape == (H, W):
        return values
    inner = cv2.resize(values, (window.width, window.height), interpolation=cv2.INTER_NEAREST)
    if window.covers(image_wh):
        return inner
    out = np.zeros((H, W), dtype=values.dtype)
    out[window.y0:window.y0 + window.height, window.x0:window.x0 + window.width] = inner
    return out
