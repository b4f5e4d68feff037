"""Render configuration: a dataclass with every knob, loaded from ``config/data/*.yaml``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from distill import config as configlib
from distill.data.camera_paths import PathKind, PathRanges
from distill.data.scenes import SPLITS, SUITES


@dataclass(frozen=True)
class RenderConfig:
    """What to render. Every field is in the YAML file; the defaults are the default dataset."""

    seed: int = 0
    """Root seed: every clip's randomness derives from (seed, clip id), so reruns are identical."""
    width: int = 224
    height: int = 224
    frames: int = 24
    """T, frames per clip."""
    rgb_msaa: bool = False
    """4x MSAA for RGB (about 2x slower on a software renderer); depth is never multisampled."""
    suites: tuple[str, ...] = SUITES
    clips: dict = field(default_factory=lambda: {"train": 2000, "val": 200, "test": 200})
    """Clips per split."""
    val_scenes: tuple[str, ...] = ("KITCHEN_SCENE7", "LIVING_ROOM_SCENE4", "STUDY_SCENE2")
    test_scenes: tuple[str, ...] = ("KITCHEN_SCENE9", "LIVING_ROOM_SCENE3", "STUDY_SCENE4")
    max_tasks_per_split: int | None = None
    """Use only this many tasks per split (evenly spaced); None = all tasks of the split's scenes."""
    clips_per_shard: int = 16
    path_weights: dict = field(
        default_factory=lambda: {"orbit": 0.3, "arc": 0.2, "random_walk": 0.3, "wrist": 0.12, "agentview": 0.08}
    )
    radius_m: tuple[float, float] = (0.6, 1.3)
    elevation_deg: tuple[float, float] = (15.0, 65.0)
    fov_y_deg: tuple[float, float] = (40.0, 75.0)
    target_jitter_m: float = 0.06
    arm_jitter_rad: float = 0.15
    """Random offset of the arm's joints per clip (kinematic; rejected if the arm penetrates anything)."""
    arm_motion_rad: float = 0.35
    """Largest joint amplitude of the scripted arm motion in ``wrist`` / ``agentview`` clips."""
    depth_unit_m: float = 0.0002
    """Depth is stored as uint16 in units of this many metres (0.2 mm: max 13.1 m, 0 = invalid)."""

    def __post_init__(self):
        for s in self.suites:
            if s not in SUITES:
                raise ValueError(f"unknown suite {s!r}")
        if set(self.clips) - set(SPLITS):
            raise ValueError(f"clips keys must be among {SPLITS}, got {sorted(self.clips)}")
        if set(self.val_scenes) & set(self.test_scenes):
            raise ValueError("val_scenes and test_scenes overlap")
        for k in self.path_weights:
            PathKind(k)
        if self.width <= 0 or self.height <= 0 or self.frames < 2 or self.clips_per_shard < 1:
            raise ValueError("width, height, clips_per_shard must be positive and frames >= 2")

    @property
    def path_ranges(self) -> PathRanges:
        return PathRanges(tuple(self.radius_m), tuple(self.elevation_deg), tuple(self.fov_y_deg), self.target_jitter_m)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return json.loads(json.dumps(d))  # tuples -> lists, a plain JSON-able dict

    def digest(self) -> str:
        """sha256 of the canonical JSON: a run refuses to resume into a folder made with another config."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def load_config(path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> RenderConfig:
    """Read a YAML render config (``base:`` files, ``KEY=VALUE`` overrides); unknown keys are a ConfigError."""
    return configlib.load_config(RenderConfig, path, overrides)
