"""Output activations of the dense heads (after VGGT's ``head_act.py``), clamped so exp never overflows."""

from __future__ import annotations

import enum

import torch

_CLAMP = 15.0


class DenseActivation(enum.Enum):
    """How a dense head turns its raw channels into values."""

    POINTS = "points"  # 3 channels, sign(x) * (exp|x| - 1): linear near 0, reaches far scenes
    DEPTH = "depth"  # 1 channel, exp(x) > 0


def activate_points(x: torch.Tensor) -> torch.Tensor:
    """``inv_log``: ``sign(x) * (exp(|x|) - 1)``."""
    return torch.sign(x) * (torch.exp(x.abs().clamp(max=_CLAMP)) - 1.0)


def activate_depth(x: torch.Tensor) -> torch.Tensor:
    """Strictly positive depth ``exp(x)``."""
    return torch.exp(x.clamp(-_CLAMP, _CLAMP))


def activate_conf(x: torch.Tensor) -> torch.Tensor:
    """Confidence ``1 + exp(x)`` (> 1, so ``-log c`` stays bounded below by the data term)."""
    return 1.0 + torch.exp(x.clamp(-_CLAMP, _CLAMP))
