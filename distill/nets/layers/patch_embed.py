"""Patch embedding (a strided conv) and fixed 2D sine-cosine position embeddings."""

from __future__ import annotations

import math

import torch
from torch import nn


class PatchEmbed(nn.Module):
    """``[B, 3, H, W]`` → tokens ``[B, (H/p)(W/p), C]``; H and W must be multiples of ``patch``."""

    def __init__(self, patch: int, in_chans: int, dim: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.patch or w % self.patch:
            raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {self.patch}")
        return self.proj(x).flatten(2).transpose(1, 2)


def sincos_pos_embed_2d(grid_h: int, grid_w: int, dim: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Fixed 2D sine-cosine position embedding ``[grid_h * grid_w, dim]`` (MAE-style, row-major).

    Half the channels encode the row, half the column; ``dim`` must be a multiple of 4. With
    static shapes the result is a constant in an exported graph.
    """
    if dim % 4:
        raise ValueError(f"sincos_pos_embed_2d needs dim % 4 == 0, got {dim}")
    quarter = dim // 4
    omega = torch.exp(-math.log(10000.0) * torch.arange(quarter, device=device, dtype=torch.float32) / quarter)
    rows = torch.arange(grid_h, device=device, dtype=torch.float32)[:, None].expand(grid_h, grid_w).reshape(-1)
    cols = torch.arange(grid_w, device=device, dtype=torch.float32)[None, :].expand(grid_h, grid_w).reshape(-1)
    out_r, out_c = rows[:, None] * omega[None], cols[:, None] * omega[None]
    emb = torch.cat([out_r.sin(), out_r.cos(), out_c.sin(), out_c.cos()], dim=1)
    return emb.to(dtype)
