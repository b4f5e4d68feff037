"""The shallow 3D probe (VidFM3D / VGGT-style): alternating attention over S frames + heads.

Input: tokens of S frames ``[B, S, N, C_in]`` on an ``h x w`` patch grid, frame 0 the reference.

1. A linear map to the probe width, a fixed 2D sine-cosine position embedding, a learned
   reference-frame embedding added to every token of frame 0, and one camera token prepended to
   each frame (one learned token for the reference, one shared by the others).
2. L block pairs: frame attention (within each frame's 1 + N tokens), then global attention
   (over all S (1 + N) tokens). The output of each pair, ``[frame ‖ global]`` (2 * dim), is kept.
3. Heads: two DPT heads read the four kept levels (L = 4; other L pick 4 evenly) → point map in
   the reference camera frame and depth, each with a confidence > 1; the camera head reads the
   camera tokens of the last level → the 9-d pose encoding relative to the reference; the pooled
   ``features [B, S, 2 * dim]`` are the mean patch token of the last level.

No data-dependent control flow: with static shapes it exports to ONNX as ``heads.onnx``.
"""

from __future__ import annotations

import torch
from torch import nn

from distill.nets.heads import CameraHead, DenseActivation, DPTHead
from distill.nets.layers import Block, sincos_pos_embed_2d
from distill.nets.models.config import ProbeConfig
from vega_ros.contract import HEADS_OUTPUTS as OUTPUT_NAMES  # the exported heads outputs, in order


def _pick_levels(n_layers: int, k: int = 4) -> list[int]:
    if n_layers >= k:
        return [round(i * (n_layers - 1) / (k - 1)) for i in range(k)]
    return [min(i, n_layers - 1) for i in range(k)]


def grid_from_tokens(n_tokens: int, grid_size: tuple[int, int] | None) -> tuple[int, int]:
    if grid_size is not None:
        if grid_size[0] * grid_size[1] != n_tokens:
            raise ValueError(f"grid {grid_size} does not hold {n_tokens} tokens")
        return tuple(grid_size)
    side = round(n_tokens**0.5)
    if side * side != n_tokens:
        raise ValueError(f"{n_tokens} tokens are not a square grid; set grid_size")
    return side, side


class Probe(nn.Module):
    def __init__(self, cfg: ProbeConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.in_proj = nn.Sequential(nn.LayerNorm(cfg.in_dim), nn.Linear(cfg.in_dim, d))
        self.ref_embed = nn.Parameter(torch.randn(1, 1, 1, d) * 0.02)
        self.camera_token = nn.Parameter(torch.randn(1, 2, 1, d) * 0.02)  # [reference, others]
        self.frame_blocks = nn.ModuleList(
            [Block(d, cfg.num_heads, cfg.mlp_ratio, init_values=cfg.init_values) for _ in range(cfg.depth)]
        )
        self.global_blocks = nn.ModuleList(
            [Block(d, cfg.num_heads, cfg.mlp_ratio, init_values=cfg.init_values) for _ in range(cfg.depth)]
        )
        self.levels = _pick_levels(cfg.depth)
        self.point_head = DPTHead(2 * d, cfg.dpt_features, cfg.dpt_out_channels, DenseActivation.POINTS)
        self.depth_head = DPTHead(2 * d, cfg.dpt_features, cfg.dpt_out_channels, DenseActivation.DEPTH)
        self.camera_head = CameraHead(2 * d, cfg.camera_hidden)

    def aggregate(self, tokens: torch.Tensor, grid_hw: tuple[int, int]) -> list[torch.Tensor]:
        """``tokens [B, S, N, C_in]`` → per block pair ``[B, S, 1 + N, 2 * dim]`` (camera token first)."""
        b, s, n, _ = tokens.shape
        d = self.cfg.dim
        x = self.in_proj(tokens) + sincos_pos_embed_2d(*grid_hw, d, tokens.device, tokens.dtype)
        is_ref = (torch.arange(s, device=tokens.device) == 0).to(x.dtype).view(1, s, 1, 1)
        x = x + self.ref_embed * is_ref
        cam = self.camera_token[:, :1] * is_ref + self.camera_token[:, 1:] * (1.0 - is_ref)  # [1, S, 1, d]
        x = torch.cat([cam.expand(b, s, 1, d), x], dim=2)
        outs = []
        for fblk, gblk in zip(self.frame_blocks, self.global_blocks):
            x = fblk(x.reshape(b * s, n + 1, d)).reshape(b, s, n + 1, d)
            xf = x
            x = gblk(x.reshape(b, s * (n + 1), d)).reshape(b, s, n + 1, d)
            outs.append(torch.cat([xf, x], dim=-1))
        return outs

    def forward(
        self,
        tokens: torch.Tensor,
        image_hw: tuple[int, int] | None = None,
        grid_hw: tuple[int, int] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Returns ``depth [B,S,H,W]``, ``depth_conf``, ``points [B,S,H,W,3]``, ``points_conf``,
        ``pose_enc [B,S,9]`` and ``features [B,S,2*dim]``."""
        b, s, n, _ = tokens.shape
        image_hw = tuple(image_hw or self.cfg.image_size)
        grid_hw = tuple(grid_hw or grid_from_tokens(n, self.cfg.grid_size))
        outs = self.aggregate(tokens, grid_hw)
        levels = [outs[i][:, :, 1:].reshape(b * s, n, -1) for i in self.levels]
        points, points_conf = self.point_head(levels, grid_hw, image_hw)
        depth, depth_conf = self.depth_head(levels, grid_hw, image_hw)
        h, w = image_hw
        last = outs[-1]
        return {
            "depth": depth.reshape(b, s, h, w),
            "depth_conf": depth_conf.reshape(b, s, h, w),
            "points": points.reshape(b, s, h, w, 3),
            "points_conf": points_conf.reshape(b, s, h, w),
            "pose_enc": self.camera_head(last[:, :, 0]),
            "features": last[:, :, 1:].mean(dim=2),
        }

    @staticmethod
    def export_outputs(out: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        """The outputs of the exported ``heads`` graph, in :data:`OUTPUT_NAMES` order."""
        return tuple(out[k] for k in OUTPUT_NAMES)
