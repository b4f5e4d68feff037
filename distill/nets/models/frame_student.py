"""The per-frame student of format version 2: one image and its focal length -> metric depth,
confidence and tokens, in one graph (``frame.onnx``).

Layout (strides relative to the H x W input)::

    image [B, 3, H, W] in [0, 1] --normalise--> stem: s1 (image feature) . s2 . s4 . s8 . s16 (C)
    s16 -> tokens [B, N, C] + 2D sin-cos positions -> ``depth`` transformer blocks -> LayerNorm -> tokens
    tokens (as a grid) -> DepthDecoder(skips s8, s4, s2, s1) -> raw [B, 2, H, W]
    log depth = raw[:, 0] + log(focal_px / f_c)     (canonical-focal transform, heads.focal)
    depth = exp(log depth) [B, H, W] metres, depth_conf = 1 + exp(raw[:, 1]) [B, H, W]

Why this shape: convolutions carry the locality and translation equivariance that let a net
learn edges, texture gradients and contact lines from little data, and they are cheap at high
resolution, where the decoder needs detail; a few attention blocks at stride 16 (196 tokens at
224 x 224) add the global context monocular depth needs (where the floor is, how big a table is)
at a cost that stays small on a CPU. The tokens feed the policy, the pooled features and the
optional keyframe heads.
"""

from __future__ import annotations

import torch
from torch import nn

from distill.nets.heads import DepthDecoder, activate_conf, log_focal_offset
from distill.nets.heads.head_act import _CLAMP
from distill.nets.layers import Block, ConvBNAct, ResidualUnit, sincos_pos_embed_2d
from distill.nets.models.config import FrameStudentConfig

STRIDE = 16


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Conv2d):
        nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class FrameStudent(nn.Module):
    """``(image [B, 3, H, W] in [0, 1] RGB, focal_px [B]) -> (depth [B, H, W] m, depth_conf [B, H, W] > 1,
    tokens [B, N, C])``; :meth:`maps` gives the training outputs (log depth, conf, tokens)."""

    def __init__(self, cfg: FrameStudentConfig):
        super().__init__()
        self.cfg = cfg
        c1, c2, c4, c8 = cfg.stem_channels
        c = cfg.embed_dim
        self.image_feat = ConvBNAct(3, c1)
        self.s2 = nn.Sequential(ConvBNAct(3, c2, stride=2), ConvBNAct(c2, c2))
        self.s4 = nn.Sequential(ConvBNAct(c2, c4, stride=2), ResidualUnit(c4))
        self.s8 = nn.Sequential(ConvBNAct(c4, c8, stride=2), ResidualUnit(c8))
        self.s16 = nn.Conv2d(c8, c, 3, stride=2, padding=1)
        self.blocks = nn.ModuleList([Block(c, cfg.num_heads, cfg.mlp_ratio, init_values=None) for _ in range(cfg.depth)])
        self.norm = nn.LayerNorm(c)
        self.decoder = DepthDecoder(c, (c8, c4, c2, c1), tuple(cfg.decoder_channels), cfg.log_depth_init)
        gh, gw = self.grid_size(*cfg.image_size)
        self.register_buffer("pos", sincos_pos_embed_2d(gh, gw, c)[None], persistent=False)  # [1, N, C] at image_size
        self.register_buffer("mean", torch.tensor(cfg.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.std).view(1, 3, 1, 1), persistent=False)
        self.apply(_init_weights)
        self.decoder.init_output(cfg.log_depth_init)  # depth exp(log_depth_init), conf 2, everywhere

    @property
    def embed_dim(self) -> int:
        return self.cfg.embed_dim

    @property
    def canonical_focal_px(self) -> float:
        return self.cfg.canonical_focal_px

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        return height // STRIDE, width // STRIDE

    def maps(self, image: torch.Tensor, focal_px: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training outputs: ``log_depth [B, H, W]`` (log metres for ``focal_px``), ``log_depth_canonical``,
        ``conf [B, H, W]`` (> 1) and ``tokens [B, N, C]``."""
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"image must be [B, 3, H, W], got {tuple(image.shape)}")
        h, w = image.shape[-2:]
        if h % STRIDE or w % STRIDE:
            raise ValueError(f"image size {h}x{w} is not a multiple of {STRIDE}")
        if focal_px.shape != (image.shape[0],):
            raise ValueError(f"focal_px must be [B] = [{image.shape[0]}], got {tuple(focal_px.shape)}")
        x = (image - self.mean) / self.std
        f1 = self.image_feat(x)
        f2 = self.s2(x)
        f4 = self.s4(f2)
        f8 = self.s8(f4)
        g = self.s16(f8)  # [B, C, H/16, W/16]
        b, c, gh, gw = g.shape
        pos = self.pos if (gh, gw) == self.grid_size(*self.cfg.image_size) else \
            sincos_pos_embed_2d(gh, gw, c, device=g.device)[None]
        t = g.flatten(2).transpose(1, 2) + pos.to(g.dtype)
        for blk in self.blocks:
            t = blk(t)
        tokens = self.norm(t)
        raw = self.decoder(tokens.transpose(1, 2).reshape(b, c, gh, gw), [f8, f4, f2, f1])
        log_c = raw[:, 0].clamp(-_CLAMP, _CLAMP)
        return {
            "log_depth_canonical": log_c,
            "log_depth": log_c + log_focal_offset(focal_px.to(log_c.dtype), self.cfg.canonical_focal_px),
            "conf": activate_conf(raw[:, 1]),
            "tokens": tokens,
        }

    def forward(self, image: torch.Tensor, focal_px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The exported graph's outputs, in the contract's order (``vega_ros.contract.FRAME_OUTPUTS``)."""
        m = self.maps(image, focal_px)
        return torch.exp(m["log_depth"]), m["conf"], m["tokens"]


def build_frame_student(preset: str = "cpu", seed: int | None = None, **overrides) -> FrameStudent:
    """A freshly initialised per-frame student; ``seed`` makes the random weights reproducible."""
    cfg = FrameStudentConfig.preset(preset, **overrides)
    if seed is None:
        return FrameStudent(cfg)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FrameStudent(cfg)


def frame_card_fields(model: FrameStudent) -> dict:
    """The card fields ``distill.export.export_artifact_v2`` needs that follow from the model alone."""
    h, w = model.cfg.image_size
    gh, gw = model.grid_size(h, w)
    return {"height": h, "width": w, "tokens_n": gh * gw, "tokens_c": model.embed_dim,
            "canonical_focal_px": model.canonical_focal_px, "depth_scale": "metric",
            "normalization": {"mean": list(model.cfg.mean), "std": list(model.cfg.std), "in_graph": True},
            "training": {"architecture": {"class": "FrameStudent", **model.cfg.to_dict()}}}


__all__ = ["FrameStudent", "build_frame_student", "frame_card_fields"]
