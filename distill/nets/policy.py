"""The manipulation policy: a semantic image stream gated with frozen 3D tokens (VEGA-3D), then a
small transformer that reads proprioception and the task's sentence embedding and predicts an
action chunk.

Inputs (one control step, both cameras):
    agentview, wrist: ``[B, 3, H, W]`` float32 RGB in [0, 1] (LIBERO renders at 128x128)
    tokens_3d:        ``[B, 2, N, C]`` frozen student tokens of (agentview, wrist), from the
                      exported student (``vega_ros.engine.Engine.tokens``: ``encoder.onnx``, or a
                      per-frame student's ``frame.onnx``); N = g_enc^2 tokens of width C
    proprio:          ``[B, P]`` float32 (vega_ros.proprio.PROPRIO_LAYOUT)
    language:         ``[B, L]`` float32 sentence embedding of the instruction (all-MiniLM-L6-v2, L = 384)
Output:
    actions:          ``[B, K, 7]`` the next K actions (OSC_POSE deltas and gripper), in [-1, 1]

Fusion (token level, per channel): ``g = sigmoid(W [f_sem; f_3d] + b)``,
``fused = g * f_3d + (1 - g) * f_sem``; the ablations drop one stream (`3d-only`, `semantic-only`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import torch
from torch import nn


class Fusion(str, Enum):
    FUSED = "fused"
    THREE_D_ONLY = "3d-only"
    SEMANTIC_ONLY = "semantic-only"


@dataclass
class PolicyConfig:
    """Every knob of :class:`GatedFusionPolicy`."""

    fusion: Fusion = Fusion.FUSED
    token_dim_3d: int = 192  # C of the student's tokens (ViT-Ti: 192)
    tokens_3d: int = 196  # N of the student's tokens (224 / 16 = 14, squared)
    grid: int = 7  # both streams are pooled to grid x grid tokens per camera
    dim: int = 128  # width of the fused tokens and the transformer
    depth: int = 2  # transformer layers
    heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.1
    proprio_dim: int = 8
    language_dim: int = 384
    chunk: int = 8  # K actions predicted per call
    action_dim: int = 7
    cameras: int = 2

    def __post_init__(self) -> None:
        self.fusion = Fusion(self.fusion)
        side = int(round(self.tokens_3d ** 0.5))
        if side * side != self.tokens_3d:
            raise ValueError(f"tokens_3d must be a square grid, got {self.tokens_3d}")


def adaptive_pool_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """``[n_out, n_in]`` averaging weights with PyTorch's adaptive-pool bins (start = floor(i n / g), end = ceil((i + 1) n / g))."""
    m = torch.zeros(n_out, n_in)
    for i in range(n_out):
        start, end = (i * n_in) // n_out, -((-(i + 1) * n_in) // n_out)
        m[i, start:end] = 1.0 / (end - start)
    return m


def adaptive_avg_pool2d(x: torch.Tensor, grid: int) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, grid)`` as two matrix products, for any input size.

    ONNX's exporter only maps adaptive pooling when the output divides the input (LIBERO's 128²
    images give a 16x16 stem map, pooled to 7x7); MatMul exports everywhere, and TensorRT runs it.
    ``x``: ``[B, C, H, W]`` -> ``[B, C, grid, grid]``.
    """
    h, w = x.shape[-2:]
    ph = adaptive_pool_matrix(int(h), grid).to(x)
    pw = adaptive_pool_matrix(int(w), grid).to(x)
    return ph @ x @ pw.T


class SemanticStem(nn.Module):
    """A small conv net trained with the policy: ``[B, 3, H, W]`` -> ``[B, grid^2, dim]`` tokens."""

    def __init__(self, dim: int, grid: int) -> None:
        super().__init__()
        widths = (32, 64, 128)
        layers, c_in = [], 3
        for w in widths:
            layers += [nn.Conv2d(c_in, w, 3, stride=2, padding=1), nn.GroupNorm(8, w), nn.GELU()]
            c_in = w
        self.body = nn.Sequential(*layers)
        self.grid = grid
        self.proj = nn.Linear(c_in, dim)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = adaptive_avg_pool2d(self.body((image - self.mean) / self.std), self.grid)  # [B, C, g, g]
        return self.proj(x.flatten(2).transpose(1, 2))


class TokenProjector3D(nn.Module):
    """Frozen 3D tokens ``[B, N, C]`` (a square grid) -> ``[B, grid^2, dim]``."""

    def __init__(self, c_in: int, n_in: int, dim: int, grid: int) -> None:
        super().__init__()
        self.side = int(round(n_in ** 0.5))
        self.grid = grid
        self.norm = nn.LayerNorm(c_in)
        self.proj = nn.Linear(c_in, dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, n, c = tokens.shape
        x = self.norm(tokens).transpose(1, 2).reshape(b, c, self.side, self.side)
        x = adaptive_avg_pool2d(x, self.grid).flatten(2).transpose(1, 2)
        return self.proj(x)


class TokenGate(nn.Module):
    """VEGA-3D's gate: ``g = sigmoid(Linear([f_sem; f_3d]))``, ``fused = g * f_3d + (1 - g) * f_sem``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * dim, dim)

    def forward(self, f_sem: torch.Tensor, f_3d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(fused, gate)``, both ``[B, N, dim]``."""
        g = torch.sigmoid(self.linear(torch.cat([f_sem, f_3d], dim=-1)))
        return g * f_3d + (1.0 - g) * f_sem, g


class GatedFusionPolicy(nn.Module):
    """Behaviour-cloning policy over fused semantic + 3D tokens (see the module docstring)."""

    def __init__(self, cfg: PolicyConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        n_vis = cfg.cameras * cfg.grid * cfg.grid
        if cfg.fusion != Fusion.THREE_D_ONLY:
            self.semantic = SemanticStem(d, cfg.grid)
        if cfg.fusion != Fusion.SEMANTIC_ONLY:
            self.project_3d = TokenProjector3D(cfg.token_dim_3d, cfg.tokens_3d, d, cfg.grid)
        if cfg.fusion == Fusion.FUSED:
            self.gate = TokenGate(d)
        self.camera_embed = nn.Parameter(torch.zeros(cfg.cameras, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, n_vis, d))
        self.proprio = nn.Sequential(nn.Linear(cfg.proprio_dim, d), nn.GELU(), nn.Linear(d, d))
        self.language = nn.Sequential(nn.LayerNorm(cfg.language_dim), nn.Linear(cfg.language_dim, d))
        self.action_queries = nn.Parameter(torch.zeros(1, cfg.chunk, d))
        layer = nn.TransformerEncoderLayer(d, cfg.heads, int(d * cfg.mlp_ratio), cfg.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, cfg.depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.action_dim)
        for p in (self.camera_embed, self.pos_embed, self.action_queries):
            nn.init.trunc_normal_(p, std=0.02)

    def visual_tokens(self, agentview: torch.Tensor, wrist: torch.Tensor, tokens_3d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``[B, cameras * grid^2, dim]`` fused tokens and the gate values (None unless fused)."""
        per_camera, gates = [], []
        for cam, image in enumerate((agentview, wrist)):
            if self.cfg.fusion == Fusion.SEMANTIC_ONLY:
                tok = self.semantic(image)
            elif self.cfg.fusion == Fusion.THREE_D_ONLY:
                tok = self.project_3d(tokens_3d[:, cam])
            else:
                tok, g = self.gate(self.semantic(image), self.project_3d(tokens_3d[:, cam]))
                gates.append(g)
            per_camera.append(tok + self.camera_embed[cam])
        return torch.cat(per_camera, 1) + self.pos_embed, (torch.cat(gates, 1) if gates else None)

    def forward(self, agentview: torch.Tensor, wrist: torch.Tensor, tokens_3d: torch.Tensor,
                proprio: torch.Tensor, language: torch.Tensor) -> torch.Tensor:
        """``[B, K, 7]`` actions in [-1, 1] (see the module docstring for the inputs)."""
        vis, _ = self.visual_tokens(agentview, wrist, tokens_3d)
        b = vis.shape[0]
        seq = torch.cat([
            self.proprio(proprio)[:, None],
            self.language(language)[:, None],
            vis,
            self.action_queries.expand(b, -1, -1),
        ], 1)
        out = self.transformer(seq)[:, -self.cfg.chunk:]
        return torch.tanh(self.head(self.norm(out)))
