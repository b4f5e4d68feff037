"""Configuration dataclasses of the networks (LeRobot style: every knob, its default, a docstring).

Presets are class methods (``StudentConfig.preset("vit-ti")``, ``ProbeConfig.preset("cpu")``);
``to_dict`` / ``from_dict`` round-trip through JSON and YAML.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class StudentArch(enum.Enum):
    VIT = "vit"
    CNN = "cnn"


def _asdict(cfg) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        out[f.name] = v.value if isinstance(v, enum.Enum) else (list(v) if isinstance(v, tuple) else v)
    return out


def _fromdict(cls, d: dict[str, Any]):
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(names)
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    kwargs = {}
    for k, v in d.items():
        default = getattr(cls(), k) if k in names else None
        if isinstance(default, enum.Enum):
            v = type(default)(v)
        elif isinstance(default, tuple) or isinstance(v, list):
            v = tuple(v)
        kwargs[k] = v
    return cls(**kwargs)


@dataclass
class StudentConfig:
    """The student image encoder: one image ``[B, 3, H, W]`` in [0, 1] → tokens ``[B, N, C]``."""

    arch: StudentArch = StudentArch.VIT
    """ViT (patch tokens) or a small CNN (its stride-16 feature map flattened into tokens)."""
    embed_dim: int = 192
    """Token width C (ViT-Ti 192, ViT-S 384)."""
    depth: int = 12
    """Transformer blocks (ViT only)."""
    num_heads: int = 3
    mlp_ratio: float = 4.0
    patch_size: int = 16
    """Tokens are on an (H/16) x (W/16) grid for both archs."""
    image_size: tuple[int, int] = (224, 224)
    """(H, W) the learned position embedding is laid out for; other sizes interpolate it."""
    cnn_channels: tuple[int, ...] = (32, 64, 128)
    """CNN only: widths of the stride-2 stages before the last one (which has ``embed_dim``)."""
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    """Normalisation applied inside the module (inputs are [0, 1] RGB)."""

    @classmethod
    def preset(cls, name: str) -> StudentConfig:
        presets = {
            "vit-ti": cls(embed_dim=192, num_heads=3),
            "vit-s": cls(embed_dim=384, num_heads=6),
            "cnn": cls(arch=StudentArch.CNN, embed_dim=192, depth=0, num_heads=1),
        }
        if name not in presets:
            raise ValueError(f"unknown student preset {name!r}; choose from {sorted(presets)}")
        return presets[name]

    def to_dict(self) -> dict[str, Any]:
        return _asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudentConfig:
        return _fromdict(cls, d)


@dataclass
class ProbeConfig:
    """The shallow 3D probe: L alternating (frame, global) attention blocks + DPT and camera heads."""

    in_dim: int = 192
    """Width of the encoder tokens it reads (set from the encoder)."""
    dim: int = 384
    """Width inside the probe."""
    depth: int = 4
    """Alternating block pairs L (frame attention then global attention)."""
    num_heads: int = 6
    mlp_ratio: float = 4.0
    dpt_features: int = 64
    """DPT width (256 in the paper preset)."""
    dpt_out_channels: tuple[int, int, int, int] = (48, 96, 192, 192)
    """Per-level projection widths of the DPT heads (fine → coarse)."""
    camera_hidden: int = 256
    image_size: tuple[int, int] = (224, 224)
    """Output (H, W) of the dense maps, unless ``forward`` is told otherwise."""
    grid_size: tuple[int, int] | None = None
    """Token grid (h, w); None: square, sqrt(N)."""
    init_values: float | None = 0.01
    """LayerScale init of the blocks (None: off)."""

    @classmethod
    def preset(cls, name: str, **overrides) -> ProbeConfig:
        presets = {
            # as the public probe code: 1024-d blocks (16 heads), DPT width 256
            "paper": {"dim": 1024, "num_heads": 16, "dpt_features": 256, "dpt_out_channels": (256, 512, 1024, 1024),
                      "camera_hidden": 1024},
            # trains on this CPU machine
            "cpu": {"dim": 256, "num_heads": 4, "dpt_features": 64, "dpt_out_channels": (48, 96, 192, 192),
                    "camera_hidden": 256},
            # tests only
            "tiny": {"dim": 64, "depth": 2, "num_heads": 2, "dpt_features": 32, "dpt_out_channels": (16, 32, 64, 64),
                     "camera_hidden": 64},
        }
        if name not in presets:
            raise ValueError(f"unknown probe preset {name!r}; choose from {sorted(presets)}")
        return cls(**{**presets[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return _asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProbeConfig:
        return _fromdict(cls, d)


@dataclass
class VerifierConfig:
    """The weak verifier of 3D-IDE: a light DPT decoder, trained from scratch, → depth + uncertainty."""

    in_dim: int = 192
    features: int = 32
    out_channels: tuple[int, int, int, int] = (16, 32, 64, 64)
    image_size: tuple[int, int] = (224, 224)
    grid_size: tuple[int, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        return _asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VerifierConfig:
        return _fromdict(cls, d)


@dataclass
class FrameStudentConfig:
    """The per-frame student (format version 2): ``image [B, 3, H, W]`` in [0, 1], ``focal_px [B]``
    -> metric depth, confidence and tokens. A conv stem (strides 2, 4, 8, 16) feeds a few
    transformer blocks on the stride-16 token grid; a light decoder fuses the stem's features back
    up to the image resolution. H and W must be multiples of 16."""

    stem_channels: tuple[int, int, int, int] = (8, 16, 32, 64)
    """Widths of the full-resolution image feature and of the stem stages at strides 2, 4, 8."""
    embed_dim: int = 128
    """Token width C (stride-16 grid, N = (H/16)(W/16))."""
    depth: int = 4
    """Transformer blocks on the token grid."""
    num_heads: int = 4
    mlp_ratio: float = 2.0
    decoder_channels: tuple[int, int, int, int] = (64, 32, 16, 8)
    """Decoder widths at strides 8, 4, 2, 1."""
    canonical_focal_px: float = 200.0
    """The focal length (pixels of the H x W input) the net predicts depth for; the graph rescales
    the depth by ``focal_px / canonical_focal_px`` (a 224 px image at fovy 58.5 deg has fy = 200)."""
    log_depth_init: float = 0.0
    """Initial canonical log depth (0: 1 m), the decoder's output bias."""
    image_size: tuple[int, int] = (224, 224)
    """(H, W) of the exported graph."""
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    """Normalisation applied inside the module (inputs are [0, 1] RGB)."""

    @classmethod
    def preset(cls, name: str, **overrides) -> FrameStudentConfig:
        presets = {
            "cpu": {},  # the first shipped size: <= 40 ms per 224 x 224 frame on 2 CPU threads
            # the decoder twice as wide (the cpu preset's error is smooth shapes without edges); +1.5 ms per
            # frame, 1.6x the training step; distill.nets.widen starts it from a trained cpu net
            "cpu-wd": {"decoder_channels": (128, 64, 32, 16)},
            # the stem 1.5x as wide (the skips the decoder fuses: strides 1, 2, 4, 8); ~19 ms per frame
            "cpu-ws": {"stem_channels": (12, 24, 48, 96)},
            "tiny": {"stem_channels": (4, 8, 8, 16), "embed_dim": 32, "depth": 1, "num_heads": 2,
                     "decoder_channels": (16, 8, 8, 4), "image_size": (32, 48),
                     "canonical_focal_px": 28.0},  # tests only (200 px at 224 is 28.6 px at 32)
        }
        if name not in presets:
            raise ValueError(f"unknown frame student preset {name!r}; choose from {sorted(presets)}")
        return cls(**{**presets[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return _asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrameStudentConfig:
        return _fromdict(cls, d)


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "FrameStudentConfig", "ProbeConfig", "StudentArch", "StudentConfig",
           "VerifierConfig"]
