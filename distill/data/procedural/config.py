"""Configuration of the procedural scene generator: a dataclass with every knob (``config/data/procedural*.yaml``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from distill import config as configlib
from distill.data.procedural.assets import ROBOTS

SPLITS: tuple[str, ...] = ("train", "val", "test", "heldout_family")
"""``heldout_family`` scenes are built only from held-out objects and textures (never in train / val)."""
PATH_KINDS: tuple[str, ...] = ("orbit", "arc", "random_walk", "top_down", "close_up", "handheld", "head", "fixed", "wrist")
STATIC_KINDS: frozenset[str] = frozenset({"orbit", "arc", "random_walk", "top_down", "close_up", "handheld"})
"""Path kinds where nothing in the scene moves (the validator's reprojection headline uses these)."""


@dataclass(frozen=True)
class ProceduralConfig:
    """What to render. Every field may be set in YAML; the defaults are the default dataset."""

    seed: int = 0
    """Root seed: every scene and clip is a pure function of (config, scene id)."""
    width: int = 224
    height: int = 224
    frames: int = 24
    """T, frames per clip."""
    clips: dict = field(default_factory=lambda: {"train": 2000, "val": 160, "test": 160, "heldout_family": 160})
    """Clips per split (``train``, ``val``, ``test``, ``heldout_family``)."""
    clips_per_scene: int = 8
    """Clips rendered from one compiled scene (one shard): amortises the compile over clips."""
    rgb_msaa: bool = False
    """4x MSAA for RGB (slower on a software renderer); depth is never multisampled."""
    depth_unit_m: float = 0.0002
    """uint16 depth in units of this many metres (0.2 mm: max 13.1 m, 0 = invalid)."""
    heldout_percent: float = 25.0
    """Share of LIBERO objects and of textures (each by a stable name hash) kept for the held-out family."""
    heldout_builtin: str = "gradient"
    """MuJoCo builtin texture kind used only in the held-out family (training uses checker and flat marks)."""
    robots: tuple[str, ...] = ROBOTS
    robot_counts: tuple[int, int] = (1, 2)
    """Arms per scene, inclusive range."""
    objects: tuple[int, int] = (3, 10)
    """Objects per scene, inclusive range."""
    libero_object_share: float = 0.6
    """Share of objects drawn from the LIBERO library (the rest are primitives)."""
    object_scale: tuple[float, float] = (0.7, 1.5)
    room_m: tuple[float, float] = (3.0, 7.0)
    """Room side length (metres); walls enclose it, so depth stays below ~11 m."""
    ceiling_prob: float = 0.8
    """Share of rooms with a ceiling (without one, upward views see nothing: invalid depth)."""
    table_height_m: tuple[float, float] = (0.55, 1.0)
    counter_prob: float = 0.5
    texture_px: int = 128
    """Side of every texture in pixels (LIBERO PNGs are downscaled: faster software rendering)."""
    object_texture_px: int = 256
    """Side of LIBERO objects' textures in pixels (downscaled once per worker; close-ups keep detail)."""
    shadow_prob: float = 0.25
    """Probability that a scene has one shadow-casting light (a shadow pass about doubles a software render)."""
    lights: tuple[int, int] = (1, 3)
    fov_y_deg: tuple[float, float] = (35.0, 90.0)
    path_weights: dict = field(default_factory=lambda: {
        "orbit": 0.15, "arc": 0.1, "random_walk": 0.15, "top_down": 0.1, "close_up": 0.1,
        "handheld": 0.1, "head": 0.1, "fixed": 0.1, "wrist": 0.1})
    min_valid_fraction: float = 0.2
    """A frame with less valid depth than this is refused (the clip is retried with another seed)."""
    attempts: int = 3
    """Tries per scene (and per clip) with derived seeds before it is skipped (counted, seed logged)."""

    def __post_init__(self):
        if set(self.clips) - set(SPLITS):
            raise ValueError(f"clips keys must be among {SPLITS}, got {sorted(self.clips)}")
        for k in self.path_weights:
            if k not in PATH_KINDS:
                raise ValueError(f"path_weights: unknown path kind {k!r}; known: {PATH_KINDS}")
        for r in self.robots:
            if r not in ROBOTS:
                raise ValueError(f"robots: unknown robot {r!r}; known: {ROBOTS}")
        if self.heldout_builtin not in ("gradient", "checker", "flat"):
            raise ValueError(f"heldout_builtin: {self.heldout_builtin!r} is not a MuJoCo builtin texture")
        if self.width <= 0 or self.height <= 0 or self.frames < 2 or self.clips_per_scene < 1 or self.attempts < 1:
            raise ValueError("width, height, clips_per_scene, attempts must be positive and frames >= 2")
        if not 0.0 < self.heldout_percent < 100.0:
            raise ValueError("heldout_percent must be in (0, 100)")

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def digest(self) -> str:
        """sha256 of the canonical JSON: a run refuses to resume into a folder made with another config."""
        return hashlib.sha256(json.dumps({"generator": "procedural", **self.to_dict()}, sort_keys=True).encode()).hexdigest()[:16]


def load_config(path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> ProceduralConfig:
    """Read a YAML procedural config (``base:`` files, ``KEY=VALUE`` overrides); unknown keys are a ConfigError."""
    return configlib.load_config(ProceduralConfig, path, overrides)
