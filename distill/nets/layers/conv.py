"""Convolution blocks of the per-frame student: conv + BatchNorm + ReLU, and a residual unit.

BatchNorm folds into the convolution at export (ONNX constant folding), so the per-frame graph is
plain Conv + Relu on the CPU and in TensorRT.
"""

from __future__ import annotations

import torch
from torch import nn


class ConvBNAct(nn.Sequential):
    """``k x k`` convolution (stride ``stride``, same padding) -> BatchNorm -> ReLU: ``[B, cin, H, W] -> [B, cout, H/s, W/s]``."""

    def __init__(self, cin: int, cout: int, stride: int = 1, kernel: int = 3, act: bool = True):
        layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class ResidualUnit(nn.Module):
    """``x + conv(relu(conv(x)))`` at a fixed width (the residual conv unit of DPT), ``[B, C, H, W]``."""

    def __init__(self, dim: int):
        super().__init__()
        self.body = nn.Sequential(ConvBNAct(dim, dim), ConvBNAct(dim, dim, act=False))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))
