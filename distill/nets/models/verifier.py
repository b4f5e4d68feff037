"""The weak verifier of 3D-IDE: a light DPT decoder, trained from scratch, → depth and uncertainty.

It is deliberately weak (narrow, no attention of its own) so that its depth is only good if the
student's tokens already hold 3D structure; it is dropped at inference. All four DPT levels read
the same (last) token layer through their own projections.
"""

from __future__ import annotations

import torch
from torch import nn

from distill.nets.heads import DenseActivation, DPTHead
from distill.nets.models.config import VerifierConfig
from distill.nets.models.probe import grid_from_tokens


class Verifier(nn.Module):
    """``tokens [B, S, N, C]`` → ``depth [B, S, H, W]`` (> 0) and ``sigma [B, S, H, W]`` (> 0)."""

    def __init__(self, cfg: VerifierConfig):
        super().__init__()
        self.cfg = cfg
        self.head = DPTHead(cfg.in_dim, cfg.features, cfg.out_channels, DenseActivation.DEPTH, hidden=16)

    def forward(
        self, tokens: torch.Tensor, image_hw: tuple[int, int] | None = None, grid_hw: tuple[int, int] | None = None
    ) -> dict[str, torch.Tensor]:
        b, s, n, c = tokens.shape
        image_hw = tuple(image_hw or self.cfg.image_size)
        grid_hw = tuple(grid_hw or grid_from_tokens(n, self.cfg.grid_size))
        flat = tokens.reshape(b * s, n, c)
        depth, conf = self.head([flat] * 4, grid_hw, image_hw)
        h, w = image_hw
        # the head's confidence is 1 + exp(x); the verifier's uncertainty weight may go below 1
        sigma = conf - 1.0 + 1e-3
        return {"depth": depth.reshape(b, s, h, w), "sigma": sigma.reshape(b, s, h, w)}
