"""Camera trajectories around a look-at point, in pure numpy (no simulator).

A path is ``T`` OpenCV camera poses ``T_wc [T, 4, 4]`` (world-from-camera, metres) plus a vertical
field of view per frame ``fov_y_deg [T]``. World z is up (MuJoCo / LIBERO). Kinds:

- ``orbit``        constant radius and height, azimuth sweeps 90-240 degrees around the target
- ``arc``          shorter azimuth sweep (30-90 degrees) while radius and elevation change (dolly + crane)
- ``random_walk``  smooth random walk: eye and target follow cubic (Catmull-Rom) interpolations of
                   random knots; between knots the values may overshoot the ranges slightly (<~12 %)
- ``wrist``        the robot's wrist camera while the arm runs a scripted motion (posed in simulation)
- ``agentview``    LIBERO's fixed agentview camera while the arm moves (posed in simulation)

Only the first three are produced here; ``wrist`` and ``agentview`` come from the simulator.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from vega_ros.geometry import look_at


class PathKind(str, enum.Enum):
    """How a clip's camera moves (stored by value in the index)."""

    ORBIT = "orbit"
    ARC = "arc"
    RANDOM_WALK = "random_walk"
    WRIST = "wrist"
    AGENTVIEW = "agentview"

    @property
    def moves_arm(self) -> bool:
        """True where the arm moves during the clip (the scene is not static)."""
        return self in (PathKind.WRIST, PathKind.AGENTVIEW)

    @property
    def is_free_camera(self) -> bool:
        """True for paths generated here (a free camera posed by us)."""
        return not self.moves_arm


@dataclass(frozen=True)
class PathRanges:
    """Sampling ranges of free-camera paths (metres, degrees)."""

    radius_m: tuple[float, float] = (0.6, 1.3)
    elevation_deg: tuple[float, float] = (15.0, 65.0)
    fov_y_deg: tuple[float, float] = (40.0, 75.0)
    target_jitter_m: float = 0.06


@dataclass(frozen=True)
class CameraPath:
    """Eye and target per frame (world, metres) and vertical fov (degrees)."""

    eye: np.ndarray  # [T, 3]
    target: np.ndarray  # [T, 3]
    fov_y_deg: np.ndarray  # [T]

    def poses(self) -> np.ndarray:
        """``T_wc [T, 4, 4]`` float64, OpenCV axes, world z up (no roll)."""
        return np.stack([look_at(e, t, up=(0.0, 0.0, 1.0)) for e, t in zip(self.eye, self.target)])

    def scaled_towards_target(self, ratio: float) -> CameraPath:
        """The same path with every eye moved towards its target by ``ratio`` (0 < ratio <= 1)."""
        return CameraPath(self.target + ratio * (self.eye - self.target), self.target, self.fov_y_deg)


def _spherical(radius: np.ndarray, azimuth: np.ndarray, elevation: np.ndarray) -> np.ndarray:
    """Offsets ``[T, 3]`` from radius (m), azimuth and elevation (radians, from the xy plane)."""
    ce = np.cos(elevation)
    return np.stack([radius * ce * np.cos(azimuth), radius * ce * np.sin(azimuth), radius * np.sin(elevation)], -1)


def _smooth_knots(rng: np.random.Generator, n_frames: int, n_knots: int, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Catmull-Rom interpolation ``[T, D]`` through ``n_knots`` uniform random knots in [low, high]."""
    knots = rng.uniform(low, high, size=(n_knots, len(low)))
    pts = np.concatenate([knots[:1], knots, knots[-1:]])  # clamp the ends
    s = np.linspace(0.0, n_knots - 1, n_frames)
    i = np.minimum(s.astype(int), n_knots - 2)
    u = (s - i)[:, None]
    p0, p1, p2, p3 = pts[i], pts[i + 1], pts[i + 2], pts[i + 3]
    return 0.5 * (2 * p1 + (-p0 + p2) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u**2 + (-p0 + 3 * p1 - 3 * p2 + p3) * u**3)


def make_free_path(kind: PathKind, rng: np.random.Generator, target: np.ndarray, n_frames: int, ranges: PathRanges = PathRanges()) -> CameraPath:
    """A free-camera path of ``kind`` around ``target [3]`` (world, metres) with ``n_frames`` frames."""
    target = np.asarray(target, dtype=np.float64) + rng.normal(0.0, ranges.target_jitter_m, 3) * np.array([1.0, 1.0, 0.3])
    r_lo, r_hi = ranges.radius_m
    e_lo, e_hi = np.deg2rad(ranges.elevation_deg)
    t = np.linspace(0.0, 1.0, n_frames)
    az0 = rng.uniform(-np.pi, np.pi)
    direction = rng.choice([-1.0, 1.0])
    if kind == PathKind.ORBIT:
        sweep = np.deg2rad(rng.uniform(90.0, 240.0))
        radius = np.full(n_frames, rng.uniform(r_lo, r_hi))
        elevation = np.full(n_frames, rng.uniform(e_lo, e_hi))
        azimuth = az0 + direction * sweep * t
        fov = np.full(n_frames, rng.uniform(*ranges.fov_y_deg))
        targets = np.repeat(target[None], n_frames, 0)
    elif kind == PathKind.ARC:
        sweep = np.deg2rad(rng.uniform(30.0, 90.0))
        radius = np.linspace(*rng.uniform(r_lo, r_hi, 2), n_frames)
        elevation = np.linspace(*rng.uniform(e_lo, e_hi, 2), n_frames)
        azimuth = az0 + direction * sweep * t
        fov = np.linspace(*rng.uniform(*ranges.fov_y_deg, 2), n_frames)
        targets = np.repeat(target[None], n_frames, 0)
    elif kind == PathKind.RANDOM_WALK:
        n_knots = int(rng.integers(3, 6))
        span = np.deg2rad(rng.uniform(40.0, 120.0))
        walk = _smooth_knots(rng, n_frames, n_knots, np.array([r_lo, e_lo, -span / 2]), np.array([r_hi, e_hi, span / 2]))
        radius, elevation, azimuth = walk[:, 0], walk[:, 1], az0 + walk[:, 2]
        fov = _smooth_knots(rng, n_frames, n_knots, np.array([ranges.fov_y_deg[0]]), np.array([ranges.fov_y_deg[1]]))[:, 0]
        j = ranges.target_jitter_m
        targets = target + _smooth_knots(rng, n_frames, n_knots, np.array([-j, -j, -j / 3]), np.array([j, j, j / 3]))
    else:
        raise ValueError(f"{kind} is not a free-camera path kind")
    eye = targets + _spherical(radius, azimuth, elevation)
    return CameraPath(eye=eye, target=targets, fov_y_deg=np.clip(fov, 1.0, 179.0))
