"""The student image encoder (ViT at patch 16, or a small CNN) and its checkpoint format.

``StudentEncoder`` maps one image ``[B, 3, H, W]`` float32 in [0, 1] RGB to tokens ``[B, N, C]``
(N = (H/16)(W/16), row-major), normalising inside the module, so it can be exported as the robot's
``encoder.onnx`` as is. Given clips ``[B, S, 3, H, W]`` it returns ``[B, S, N, C]``.

Checkpoint format (``save_student`` / ``load_student``): a directory with ``config.json``
(``StudentConfig.to_dict()``) and ``model.safetensors``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from distill.nets.layers import Block, PatchEmbed, sincos_pos_embed_2d
from distill.nets.models.config import StudentArch, StudentConfig


class _ViTBackbone(nn.Module):
    def __init__(self, cfg: StudentConfig):
        super().__init__()
        self.patch_embed = PatchEmbed(cfg.patch_size, 3, cfg.embed_dim)
        gh, gw = cfg.image_size[0] // cfg.patch_size, cfg.image_size[1] // cfg.patch_size
        self.base_grid = (gh, gw)
        self.pos_embed = nn.Parameter(sincos_pos_embed_2d(gh, gw, cfg.embed_dim)[None].clone())
        self.blocks = nn.ModuleList(
            [Block(cfg.embed_dim, cfg.num_heads, cfg.mlp_ratio, init_values=None) for _ in range(cfg.depth)]
        )
        self.norm = nn.LayerNorm(cfg.embed_dim)
        self.apply(_init_weights)

    def pos_for(self, gh: int, gw: int) -> torch.Tensor:
        if (gh, gw) == self.base_grid:
            return self.pos_embed
        c = self.pos_embed.shape[-1]
        pe = self.pos_embed.reshape(1, *self.base_grid, c).permute(0, 3, 1, 2)
        pe = F.interpolate(pe, size=(gh, gw), mode="bilinear", align_corners=False)
        return pe.permute(0, 2, 3, 1).reshape(1, gh * gw, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gh, gw = x.shape[-2] // self.patch_embed.patch, x.shape[-1] // self.patch_embed.patch
        t = self.patch_embed(x) + self.pos_for(gh, gw)
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class _CNNBackbone(nn.Module):
    """Four stride-2 stages (total stride 16), two convs each; the last stage has ``embed_dim`` channels."""

    def __init__(self, cfg: StudentConfig):
        super().__init__()
        widths = list(cfg.cnn_channels)[:3] + [cfg.embed_dim]
        if len(widths) != 4:
            raise ValueError("cnn_channels needs 3 widths (stride 16 = 4 stride-2 stages)")
        stages, cin = [], 3
        for w in widths:
            stages += [_conv_bn(cin, w, 2), _conv_bn(w, w, 1)]
            cin = w
        self.stages = nn.Sequential(*stages)
        self.norm = nn.LayerNorm(cfg.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.stages(x).flatten(2).transpose(1, 2))


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class StudentEncoder(nn.Module):
    """``[B, 3, H, W]`` (or ``[B, S, 3, H, W]``) in [0, 1] RGB → tokens ``[B, N, C]`` (or ``[B, S, N, C]``)."""

    def __init__(self, cfg: StudentConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone = _ViTBackbone(cfg) if cfg.arch is StudentArch.VIT else _CNNBackbone(cfg)
        self.register_buffer("mean", torch.tensor(cfg.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.std).view(1, 3, 1, 1), persistent=False)

    @property
    def embed_dim(self) -> int:
        return self.cfg.embed_dim

    @property
    def patch_size(self) -> int:
        return self.cfg.patch_size

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        return height // self.cfg.patch_size, width // self.cfg.patch_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() == 5:
            b, s = images.shape[:2]
            tokens = self.backbone((images.flatten(0, 1) - self.mean) / self.std)
            return tokens.reshape(b, s, tokens.shape[1], tokens.shape[2])
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"expected [B, 3, H, W] or [B, S, 3, H, W], got {tuple(images.shape)}")
        return self.backbone((images - self.mean) / self.std)


def build_student(preset: str = "vit-ti", seed: int | None = None, **overrides) -> StudentEncoder:
    """A freshly initialised student; ``seed`` makes the random weights reproducible."""
    cfg = StudentConfig.preset(preset)
    for k, v in overrides.items():
        setattr(cfg, k, v)
    if seed is None:
        return StudentEncoder(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return StudentEncoder(cfg)


def save_student(model: StudentEncoder, directory: str | Path) -> Path:
    """Write ``config.json`` + ``model.safetensors`` into ``directory`` (atomic renames)."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / "config.json.tmp"
    tmp.write_text(json.dumps(model.cfg.to_dict(), indent=2))
    tmp.replace(d / "config.json")
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(d / "model.safetensors.tmp"))
    (d / "model.safetensors.tmp").replace(d / "model.safetensors")
    return d


def load_student(directory: str | Path) -> StudentEncoder:
    """Inverse of :func:`save_student`; names the missing file if the directory is incomplete."""
    from safetensors.torch import load_file

    d = Path(directory)
    for name in ("config.json", "model.safetensors"):
        if not (d / name).is_file():
            raise FileNotFoundError(f"student checkpoint {d} lacks {name} (expected config.json + model.safetensors)")
    model = StudentEncoder(StudentConfig.from_dict(json.loads((d / "config.json").read_text())))
    model.load_state_dict(load_file(str(d / "model.safetensors")))
    return model


__all__ = ["StudentEncoder", "build_student", "load_student", "save_student"]
