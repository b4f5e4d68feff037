"""Analytic clips for smoke runs and tests: a textured floor and spheres with exact depth and poses.

``synthetic:N[:HxW]`` in a data spec (:mod:`distill.data.sources`) builds these.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from distill.data.sample import make_sample
from vega_ros import geometry as geo


def make_synthetic_clip(seed: int, num_frames: int = 4, height: int = 64, width: int = 64,
                        fov_deg: float = 60.0) -> dict:
    """An analytic clip with the data contract's keys: a textured 6 m x 6 m floor (z = 0, z up) and
    three spheres, seen by ``num_frames`` cameras on an arc looking at the scene centre.

    Depth is exact (ray casting, pixel centres at +0.5), so geometry tests can demand exact answers.
    """
    rng = np.random.default_rng(seed)
    K = geo.intrinsics_from_fov(width, height, fov_deg)
    centres = np.c_[rng.uniform(-0.5, 0.5, (3, 2)), np.zeros(3)]
    radii = rng.uniform(0.15, 0.3, 3)
    centres[:, 2] = radii
    colours = rng.uniform(0.2, 1.0, (3, 3))
    checker = rng.uniform(0.05, 0.95, (2, 3))
    radius, height_c = rng.uniform(1.6, 2.4), rng.uniform(0.9, 1.5)
    freqs, phases = rng.normal(0.0, 12.0, (6, 2)), rng.uniform(0, 2 * np.pi, 6)  # non-repetitive floor texture
    az0, daz = rng.uniform(0, 2 * np.pi), rng.uniform(0.12, 0.25) * rng.choice([-1, 1])
    target = np.r_[rng.uniform(-0.2, 0.2, 2), 0.1]
    u, v = geo.pixel_grid(height, width)
    rays_c = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)  # z = 1
    images, depths, T_wcs = [], [], []
    for s in range(num_frames):
        az = az0 + s * daz
        eye = np.array([radius * np.cos(az), radius * np.sin(az), height_c + 0.05 * s])
        T_wc = geo.look_at(eye, target)
        d = rays_c @ T_wc[:3, :3].T  # world directions, t = z-depth
        depth = np.full((height, width), np.inf)
        colour = np.zeros((height, width, 3))
        t_plane = np.where(d[..., 2] < -1e-9, -eye[2] / np.where(d[..., 2] < -1e-9, d[..., 2], -1.0), np.inf)
        hit = eye + np.where(np.isfinite(t_plane), t_plane, 0.0)[..., None] * d
        t_plane = np.where((np.abs(hit[..., 0]) < 3.0) & (np.abs(hit[..., 1]) < 3.0), t_plane, np.inf)  # a 6 m floor
        cells = (np.floor(hit[..., 0] / 0.2) + np.floor(hit[..., 1] / 0.2)).astype(np.int64) % 2
        shade = 0.6 + 0.4 * np.mean([np.sin(hit[..., :2] @ f + p) for f, p in zip(freqs, phases)], axis=0)
        plane_col = checker[np.where(np.isfinite(t_plane), cells, 0)] * shade[..., None]
        closer = t_plane < depth
        depth, colour = np.where(closer, t_plane, depth), np.where(closer[..., None], plane_col, colour)
        for c, r, col in zip(centres, radii, colours):
            oc = eye - c
            a = np.sum(d * d, -1)
            b = 2.0 * np.sum(d * oc, -1)
            disc = b * b - 4 * a * (oc @ oc - r * r)
            t_s = np.where(disc > 0, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a), np.inf)
            t_s = np.where(t_s > 1e-6, t_s, np.inf)
            n = (eye + np.where(np.isfinite(t_s), t_s, 0.0)[..., None] * d - c) / r
            stripes = 0.75 + 0.25 * np.sign(np.sin(12.0 * n[..., 2]))
            lit = (0.35 + 0.65 * np.clip(n @ np.array([0.3, 0.2, 0.93]), 0, 1)) * stripes
            closer = t_s < depth
            depth = np.where(closer, t_s, depth)
            colour = np.where(closer[..., None], col * lit[..., None], colour)
        valid = np.isfinite(depth) & (depth < 20.0)
        colour[~valid] = (0.6, 0.75, 0.95)
        images.append(colour.transpose(2, 0, 1))
        depths.append(np.where(valid, depth, 0.0))
        T_wcs.append(T_wc)
    T_wc = np.stack(T_wcs)
    depth = np.stack(depths)
    points_ref = np.stack(
        [geo.transform_points(geo.relative_pose(T_wc[0], T_wc[s]), geo.depth_to_points(depth[s], K)) for s in range(num_frames)]
    )
    valid = depth > 0
    points_ref[~valid] = 0.0
    return {
        "images": np.clip(np.stack(images), 0, 1).astype(np.float32),
        "depth": depth.astype(np.float32),
        "valid": valid,
        "K": np.repeat(K[None], num_frames, 0).astype(np.float32),
        "T_wc": T_wc.astype(np.float32),
        "points_ref": points_ref.astype(np.float32),
        "frame_ids": np.arange(num_frames, dtype=np.int64) * 5,
        "clip_id": f"synthetic-{seed:05d}",
    }


class SyntheticClips(Sequence):
    """``synthetic:N[:HxW]``: N analytic clips as contract samples (``distill.data.sample.make_sample``,
    torch tensors); the test split uses disjoint seeds."""

    def __init__(self, count: int, split: str, height: int = 64, width: int = 64, num_frames: int = 4):
        self.count, self.offset = count, (0 if split == "train" else 100_000)
        self.height, self.width, self.num_frames = height, width, num_frames

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.count:
            raise IndexError(i)
        c = make_synthetic_clip(self.offset + i, self.num_frames, self.height, self.width)
        return make_sample(c["images"], c["depth"], c["K"], c["T_wc"], c["frame_ids"], c["clip_id"])


