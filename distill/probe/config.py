"""Every knob of a probe run, and its YAML presets (``config/probe/*.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from distill.config import load_config
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
    def from_yaml(cls, path: str | Path, overrides: tuple[str, ...] | list[str] = (), **values) -> ProbeRunConfig:
        """The preset ``path`` (with its ``base:`` chain), then typed ``values`` (None = not given), then
        ``KEY=VALUE`` overrides; any bad key or type is a :class:`distill.config.ConfigError` naming it."""
        return load_config(cls, path, overrides, values={k: v for k, v in values.items() if v is not None})

    def loss_config(self) -> ProbeLossConfig:
        d = dict(self.loss)
        if "scale_norm" in d:
            d["scale_norm"] = ScaleNorm(d["scale_norm"])
        return ProbeLossConfig(**d)
