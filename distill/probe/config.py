"""Every knob of a probe run, and its YAML presets (``config/probe/*.yaml``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from distill.losses import ProbeLossConfig, ScaleNorm

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "probe" / "cpu.yaml"


@dataclass
class ProbeRunConfig:
    """Every knob of a probe run (``config/probe/*.yaml`` hold presets of it)."""

    preset: str = "cpu"
    """Probe network preset (``ProbeConfig.preset``): paper | cpu | tiny."""
    probe_overrides: dict = field(default_factory=dict)
    """Fields of ``ProbeConfig`` to override (e.g. ``{depth: 2}``)."""
    steps: int = 2000
    batch_size: int = 4
    lr: float = 1e-4
    weight_decay: float = 0.05
    warmup_steps: int = 100
    grad_clip: float = 1.0
    seed: int = 0
    ckpt_every: int = 200
    train_split: str = "train"
    test_split: str = "test"
    max_train_clips: int | None = None
    max_test_clips: int | None = None
    """Caps on the samples cached per split (None: all)."""
    num_frames: int = 4
    """S, frames per sample (the first is the reference)."""
    min_gap: int = 5
    """Smallest distance between a sample's frames, in frames of the rendered clip."""
    train_samples_per_clip: int = 4
    """Different frame choices cached per training clip."""
    test_samples_per_clip: int = 1
    """Frame choices scored per test clip."""
    num_vis: int = 3
    """Test clips drawn in predictions.png."""
    alignment: str = "scale"
    """Point-map alignment before scoring: scale | sim3."""
    loss: dict = field(default_factory=dict)
    """Fields of ``ProbeLossConfig`` (weights, alpha, huber_delta, scale_norm)."""
    orb_features: int = 2000
    cache_shard: int = 64
    """Clips per cached-feature shard."""

    @classmethod
    def from_yaml(cls, path: str | Path, **overrides) -> ProbeRunConfig:
        import yaml

        data = yaml.safe_load(Path(path).read_text()) or {}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{path}: unknown probe setting(s) {unknown}; known: {sorted(known)}")
        data.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown probe setting(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    def loss_config(self) -> ProbeLossConfig:
        d = dict(self.loss)
        if "scale_norm" in d:
            d["scale_norm"] = ScaleNorm(d["scale_norm"])
        return ProbeLossConfig(**d)
