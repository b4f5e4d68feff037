"""Camera head: one token per frame → the 9-d pose encoding relative to the reference frame.

The last linear layer is initialised to output the identity pose and a ~60° field of view, so
training starts from "every camera at the reference" rather than from noise.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from distill.nets.pose_enc import POSE_ENCODING_DIM


class CameraHead(nn.Module):
    """``tokens [B, S, C] → pose_enc [B, S, 9]`` = [t (3), quat xyzw (4), fov_h, fov_w] (radians)."""

    def __init__(self, in_dim: int, hidden: int = 256, init_fov_rad: float = math.radians(60.0)):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.LayerNorm(in_dim),
            nn.Linear(in_dim, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
        )
        self.out = nn.Linear(hidden, POSE_ENCODING_DIM)
        with torch.no_grad():
            self.out.weight.mul_(0.01)
            self.out.bias.copy_(torch.tensor([0, 0, 0, 0, 0, 0, 1.0, init_fov_rad, init_fov_rad]))

    def forward(self, cam_tokens: torch.Tensor) -> torch.Tensor:
        return self.out(self.mlp(cam_tokens))
