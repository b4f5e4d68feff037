"""The canonical-focal transform (Metric3D): a net predicts depth as if the camera had the focal
length ``f_c``; the depth for the real camera is that times ``focal_px / f_c``.

Why it holds: an object of size X at depth Z spans ``f X / Z`` pixels. Two cameras that see it at
the same pixel size have ``Z_real / Z_canonical = f_real / f_c``, so a net that judges depth from
the image alone sees the canonical camera's depth; the rescale restores metres for the camera at
hand. In log space it is an offset: ``log Z = log Z_c + log(focal_px / f_c)``.

All shapes: ``focal_px [B]`` pixels (fy of the image as given, H x W); depths ``[B, H, W]``.
"""

from __future__ import annotations

import torch


def focal_ratio(focal_px: torch.Tensor, canonical_focal_px: float) -> torch.Tensor:
    """``focal_px / f_c`` as ``[B, 1, 1]`` (broadcasts over ``[B, H, W]``)."""
    if focal_px.dim() != 1:
        raise ValueError(f"focal_px must be [B] (pixels), got shape {tuple(focal_px.shape)}")
    if canonical_focal_px <= 0:
        raise ValueError(f"canonical_focal_px must be > 0, got {canonical_focal_px}")
    return (focal_px / canonical_focal_px).view(-1, 1, 1)


def canonical_to_metric(depth_canonical: torch.Tensor, focal_px: torch.Tensor, canonical_focal_px: float) -> torch.Tensor:
    """Depth ``[B, H, W]`` for the camera with ``focal_px`` from the canonical camera's depth."""
    return depth_canonical * focal_ratio(focal_px, canonical_focal_px)


def metric_to_canonical(depth: torch.Tensor, focal_px: torch.Tensor, canonical_focal_px: float) -> torch.Tensor:
    """Inverse of :func:`canonical_to_metric` (training targets in canonical units)."""
    return depth / focal_ratio(focal_px, canonical_focal_px)


def log_focal_offset(focal_px: torch.Tensor, canonical_focal_px: float) -> torch.Tensor:
    """``log(focal_px / f_c)`` as ``[B, 1, 1]``: add it to a canonical log depth."""
    return torch.log(focal_ratio(focal_px, canonical_focal_px))
