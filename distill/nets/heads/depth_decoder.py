"""A light multi-scale depth decoder (DPT / Depth-Anything spirit, sized for a CPU).

Coarse to fine: the token grid (stride 16) is projected, upsampled 2x and fused with the
encoder's skip features at strides 8, 4, 2 and with a full-resolution image feature (stride 1),
each fusion a 1x1 projection of the skip added to the upsampled path, then a 3x3 conv. The last
layer emits two channels per pixel: a raw log depth and a raw confidence. Only Conv, Resize
(bilinear), Relu and Add at inference (BatchNorm folds into the convs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distill.nets.layers import ConvBNAct


class FuseUp(nn.Module):
    """``up2(proj(x)) + skip_proj(skip)``, then a 3x3 ConvBNAct: ``[B, C_in, h, w]`` + skip ``[B, C_s, H, W]`` -> ``[B, C_out, H, W]``."""

    def __init__(self, cin: int, skip_ch: int, cout: int):
        super().__init__()
        self.proj = nn.Conv2d(cin, cout, 1)
        self.skip = nn.Conv2d(skip_ch, cout, 1, bias=False)
        self.refine = ConvBNAct(cout, cout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(self.proj(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.refine(torch.relu(x + self.skip(skip)))


class DepthDecoder(nn.Module):
    """``grid [B, C, H/16, W/16]`` + skips (strides 8, 4, 2, 1; channels ``skip_channels``) -> ``raw [B, 2, H, W]``.

    ``raw[:, 0]`` is an unbounded log depth (in the canonical camera's units, before any offset),
    ``raw[:, 1]`` an unbounded confidence logit. ``widths`` are the decoder's channels at strides
    8, 4, 2, 1.
    """

    def __init__(self, in_dim: int, skip_channels: tuple[int, int, int, int], widths: tuple[int, int, int, int],
                 log_depth_init: float = 0.0):
        super().__init__()
        if len(skip_channels) != 4 or len(widths) != 4:
            raise ValueError("DepthDecoder needs 4 skip widths and 4 decoder widths (strides 8, 4, 2, 1)")
        ins = (in_dim, *widths[:3])
        self.stages = nn.ModuleList([FuseUp(ci, cs, co) for ci, cs, co in zip(ins, skip_channels, widths)])
        self.out = nn.Conv2d(widths[3], 2, 3, padding=1)
        self.init_output(log_depth_init)

    def init_output(self, log_depth_init: float = 0.0) -> None:
        """A near-flat start: raw log depth ``log_depth_init`` and confidence logit 0 everywhere."""
        self.out.reset_parameters()
        with torch.no_grad():
            self.out.weight.mul_(0.1)
            self.out.bias.copy_(torch.tensor([log_depth_init, 0.0]))

    def forward(self, grid: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        if len(skips) != 4:
            raise ValueError(f"DepthDecoder needs 4 skips (strides 8, 4, 2, 1), got {len(skips)}")
        x = grid
        for stage, skip in zip(self.stages, skips):
            x = stage(x, skip)
        return self.out(x)
