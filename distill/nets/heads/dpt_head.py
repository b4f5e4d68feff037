"""DPT head (Ranftl et al. 2021, as in VGGT's ``dpt_head.py``): four token levels → a dense map.

Input: four token tensors ``[B', N, C_in]`` on a ``grid_h x grid_w`` patch grid. Each level is
projected (1x1 conv) and resampled to 4x, 2x, 1x and 1/2x of the grid, fused coarse-to-fine by
residual refinement units, and upsampled to the image size. The last layer emits ``value_dim``
value channels plus one confidence channel. Only Conv, ConvTranspose, Resize (bilinear), ReLU
and Add: all exportable to ONNX and built by TensorRT.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from distill.nets.heads.head_act import (
    DenseActivation,
    activate_conf,
    activate_depth,
    activate_points,
)


class ResidualConvUnit(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class FusionBlock(nn.Module):
    """``out = conv1x1(upsample(rcu2(skip_fused)))`` where ``skip_fused = x + rcu1(skip)``."""

    def __init__(self, ch: int, has_skip: bool):
        super().__init__()
        self.rcu1 = ResidualConvUnit(ch) if has_skip else None
        self.rcu2 = ResidualConvUnit(ch)
        self.out = nn.Conv2d(ch, ch, 1)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor:
        if skip is not None and self.rcu1 is not None:
            x = x + self.rcu1(skip)
        x = self.rcu2(x)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.out(x)


class DPTHead(nn.Module):
    """Dense prediction from four token levels.

    Args:
        in_dim: channels of the input tokens.
        features: DPT width (256 in the paper preset).
        out_channels: channels of the four projected levels (fine → coarse).
        activation: how the value channels are activated (``DenseActivation``).
        hidden: channels of the last convolution before the output.
    Returns (forward): ``values [B', H, W, value_dim]`` and ``conf [B', H, W]`` (> 1).
    """

    def __init__(
        self,
        in_dim: int,
        features: int = 256,
        out_channels: tuple[int, int, int, int] = (256, 512, 1024, 1024),
        activation: DenseActivation = DenseActivation.DEPTH,
        hidden: int = 32,
    ):
        super().__init__()
        self.activation = DenseActivation(activation)
        self.value_dim = 3 if self.activation is DenseActivation.POINTS else 1
        self.norm = nn.LayerNorm(in_dim)
        self.projects = nn.ModuleList([nn.Conv2d(in_dim, oc, 1) for oc in out_channels])
        self.resize = nn.ModuleList(
            [
                nn.ConvTranspose2d(out_channels[0], out_channels[0], 4, stride=4),
                nn.ConvTranspose2d(out_channels[1], out_channels[1], 2, stride=2),
                nn.Identity(),
                nn.Conv2d(out_channels[3], out_channels[3], 3, stride=2, padding=1),
            ]
        )
        self.layer_rn = nn.ModuleList([nn.Conv2d(oc, features, 3, padding=1, bias=False) for oc in out_channels])
        self.fusion = nn.ModuleList([FusionBlock(features, has_skip=i < 3) for i in range(4)])
        self.out1 = nn.Conv2d(features, max(features // 2, 1), 3, padding=1)
        self.out2 = nn.Sequential(
            nn.Conv2d(max(features // 2, 1), hidden, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, self.value_dim + 1, 1),
        )

    def forward(
        self, levels: list[torch.Tensor], grid_hw: tuple[int, int], image_hw: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if len(levels) != 4:
            raise ValueError(f"DPTHead needs 4 token levels, got {len(levels)}")
        gh, gw = grid_hw
        maps = []
        for i, tok in enumerate(levels):
            x = self.norm(tok).transpose(1, 2).reshape(tok.shape[0], tok.shape[2], gh, gw)
            maps.append(self.layer_rn[i](self.resize[i](self.projects[i](x))))
        # coarse → fine: level 3 (1/2 grid) up to level 2's size, ... , level 0 (4x grid) up to 8x grid
        x = self.fusion[3](maps[3], None, maps[2].shape[-2:])
        x = self.fusion[2](x, maps[2], maps[1].shape[-2:])
        x = self.fusion[1](x, maps[1], maps[0].shape[-2:])
        x = self.fusion[0](x, maps[0], (maps[0].shape[-2] * 2, maps[0].shape[-1] * 2))
        x = self.out1(x)
        x = F.interpolate(x, size=tuple(image_hw), mode="bilinear", align_corners=False)
        x = self.out2(x).permute(0, 2, 3, 1)  # [B', H, W, value_dim + 1]
        raw, conf = x[..., : self.value_dim], x[..., self.value_dim]
        if self.activation is DenseActivation.POINTS:
            values = activate_points(raw)
        else:
            values = activate_depth(raw)
        return values, activate_conf(conf)
