"""The 3D probe benchmark: how much 3D does a frozen encoder hold?

    python -m distill.probe --encoder SPEC --data DIR --out DIR [--config config/probe/cpu.yaml]
    python -m distill.probe --table OUT_A OUT_B ...      # one markdown table from several runs
    python -m distill.probe --table OUT_A OUT_B --versus OUT_B   # + clip-by-clip comparison with OUT_B

1. The encoder (``distill.encoders.parse_encoder_spec``) is frozen; its tokens for every clip of the
   train and test splits are cached once under ``OUT/cache/<split>/`` (fp16 safetensors shards +
   ``manifest.json``), so probe steps never pay the encoder again.
2. The probe (``distill.nets.models.Probe``, preset from the config) trains on the cached tokens
   with AdamW (lr 1e-4, linear warm-up, cosine decay) on ``distill.losses.probe_loss``; a checkpoint
   is written atomically every ``ckpt_every`` steps and a rerun resumes from it (batches are drawn
   from a per-step seed, so a resumed run sees the batches an uninterrupted one would).
3. The test split is scored (``distill.metrics.ProbeMetrics``), a classical baseline (ORB +
   essential matrix with RANSAC) is scored on the same frame pairs, and ``results.json``,
   ``results.md`` and ``predictions.png`` are written; ``results.json`` keeps every test clip's
   values (``test.per_clip``), so ``--versus`` can put a paired bootstrap interval on the difference
   between two encoders. Rerunning a finished run only re-scores it.

``--data`` is a rendered dataset directory (read through ``distill.data``), or ``synthetic:N`` for
N analytic clips (a textured ground plane and spheres, exact depth and poses) for smoke runs and tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from distill.data.sample import points_in_reference
from distill.losses import ProbeLossConfig, ScaleNorm, probe_loss
from distill.metrics import Alignment, ProbeMetrics, paired_comparison, pose_auc_table
from distill.nets.models import Probe, ProbeConfig
from distill.nets.models.probe import OUTPUT_NAMES
from vega_ros import geometry as geo

CONTRACT_KEYS = ("images", "depth", "valid", "K", "T_wc", "points_ref")


# ----------------------------------------------------------------------------- configuration


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


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up from 0 over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# ----------------------------------------------------------------------------- data


def make_synthetic_clip(seed: int, num_frames: int = 4, height: int = 64, width: int = 64, fov_deg: float = 60.0) -> dict:
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
    """``synthetic:N[:HxW]``: N analytic clips; the test split uses disjoint seeds."""

    def __init__(self, count: int, split: str, height: int = 64, width: int = 64, num_frames: int = 4):
        self.count, self.offset = count, (0 if split == "train" else 100_000)
        self.height, self.width, self.num_frames = height, width, num_frames

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < self.count:
            raise IndexError(i)
        return make_synthetic_clip(self.offset + i, self.num_frames, self.height, self.width)


def load_clips(data: str, split: str, samples_per_clip: int = 1, num_frames: int = 4, min_gap: int = 5,
               seed: int = 0) -> Sequence[dict]:
    """The samples of one split as a sequence of contract dicts (numpy or torch, no batch axis).

    ``synthetic:N[:HxW]`` builds analytic clips; anything else is a folder written by
    ``python -m distill.data.render``, read through ``distill.data.dataset.LiberoClipDataset``
    (``samples_per_clip`` frame choices per clip, S = ``num_frames`` at least ``min_gap`` apart).
    """
    if data.startswith("synthetic:"):
        parts = data.split(":")
        h = w = 64
        if len(parts) > 2:
            h, w = (int(x) for x in parts[2].lower().split("x"))
        return SyntheticClips(int(parts[1]), split, h, w, num_frames)
    root = Path(data)
    if not root.exists():
        raise FileNotFoundError(f"--data {data}: no such directory")
    from distill.data.dataset import LiberoClipDataset

    return LiberoClipDataset(root, split=split, num_frames=num_frames, min_gap=min_gap,
                             samples_per_clip=samples_per_clip, seed=seed)


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


# ----------------------------------------------------------------------------- feature cache


def cache_features(encoder, clips: Sequence[dict], cache_dir: Path, spec: str, shard_size: int = 64,
                   limit: int | None = None, desc: str = "cache", source: dict | None = None) -> dict:
    """Encode every clip once and store tokens (fp16) + targets in safetensors shards.

    Shards are written atomically; an existing complete shard is kept (resume). ``manifest.json``
    records the encoder, grid, sizes, shard list and ``source`` (where the clips came from); a
    manifest for another encoder or another source is refused.
    """
    from safetensors.torch import save_file

    cache_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = cache_dir / "manifest.json"
    n = len(clips) if limit is None else min(limit, len(clips))
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("spec") != spec:
            raise ValueError(f"{cache_dir} caches {manifest.get('spec')!r}, not {spec!r}; use another --out")
        if source is not None and manifest.get("source") not in (None, source):
            raise ValueError(f"{cache_dir} caches clips from {manifest.get('source')}, not {source}; use another --out")
        if manifest.get("complete") and manifest.get("count") == n:
            return manifest
    shards = []
    bar = tqdm(total=n, desc=desc, unit="clip", dynamic_ncols=True, disable=None)
    meta = {}
    for start in range(0, n, shard_size):
        name = f"shard_{start // shard_size:05d}.safetensors"
        path = cache_dir / name
        count = min(shard_size, n - start)
        shards.append({"file": name, "count": count})
        if path.is_file():
            bar.update(count)
            continue
        rows = {k: [] for k in ("tokens", "images", "depth", "valid", "K", "T_wc", "points_ref")}
        for i in range(start, start + count):
            sample = clips[i]
            images = torch.as_tensor(_np(sample["images"]), dtype=torch.float32)
            tokens = encoder.encode_clip(images)
            h, w = images.shape[-2:]
            meta = {"grid": list(encoder.grid_size(h, w)), "dim": int(tokens.shape[-1]), "image_hw": [h, w],
                    "frames": int(images.shape[0]), "tokens": int(tokens.shape[1])}
            rows["tokens"].append(tokens.half())
            rows["images"].append((images * 255).round().to(torch.uint8))
            for k in ("depth", "K", "T_wc", "points_ref"):
                rows[k].append(torch.as_tensor(_np(sample[k]), dtype=torch.float32))
            rows["valid"].append(torch.as_tensor(_np(sample["valid"]).astype(np.uint8)))
            bar.update(1)
        tmp = cache_dir / (name + ".tmp")
        save_file({k: torch.stack(v).contiguous() for k, v in rows.items()}, str(tmp))
        tmp.replace(path)
    bar.close()
    if not meta:  # every shard already existed: read the sizes back from the first one
        first = load_cached_split(cache_dir, shards_override=shards[:1])
        meta = {"grid": None, "dim": int(first["tokens"].shape[-1]), "image_hw": list(first["depth"].shape[-2:]),
                "frames": int(first["tokens"].shape[1]), "tokens": int(first["tokens"].shape[2])}
        meta["grid"] = list(encoder.grid_size(*meta["image_hw"]))
    manifest = {"spec": spec, "encoder": encoder.describe(), "source": source, "count": n, "shards": shards,
                "complete": True, **meta}
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    tmp.replace(manifest_path)
    return manifest


TRAIN_KEYS = ("tokens", "depth", "valid", "K", "T_wc")
"""What probe training keeps in memory from a cache. The uint8 ``images`` are only for ORB and
pictures, and ``points_ref`` (12 bytes a pixel, two thirds of a split) is rebuilt per batch from
depth, K and T_wc by :func:`batch_from_cache`."""


def load_cached_split(cache_dir: Path, shards_override: list | None = None,
                      keys: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """All shards of a cached split, concatenated: ``tokens [M, S, N, C]`` (fp16) and the targets.

    ``keys`` loads only those tensors (all by default), so a training split need not hold its
    images in memory (about 1.2 GB for 2,000 clips of 4 frames at 224²).
    """
    from safetensors import safe_open

    shards = shards_override or json.loads((cache_dir / "manifest.json").read_text())["shards"]
    parts = []
    for s in shards:
        with safe_open(str(cache_dir / s["file"]), framework="pt") as f:
            parts.append({k: f.get_tensor(k) for k in (keys or f.keys())})
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def batch_from_cache(cache: dict, idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """The probe batch of clips ``idx``; ``points_ref`` is back-projected from depth when not cached."""
    batch = {
        "tokens": cache["tokens"][idx].float(),
        "depth": cache["depth"][idx],
        "valid": cache["valid"][idx].bool(),
        "K": cache["K"][idx],
        "T_wc": cache["T_wc"][idx],
    }
    if "points_ref" in cache:
        batch["points_ref"] = cache["points_ref"][idx]
    else:
        batch["points_ref"] = torch.stack([
            torch.from_numpy(points_in_reference(d.numpy(), k.numpy(), t.numpy()))
            for d, k, t in zip(batch["depth"], batch["K"], batch["T_wc"])
        ])
    return batch


# ----------------------------------------------------------------------------- training


def build_probe(run: ProbeRunConfig, manifest: dict) -> Probe:
    cfg = ProbeConfig.preset(run.preset, **run.probe_overrides)
    cfg.in_dim = manifest["dim"]
    cfg.image_size = tuple(manifest["image_hw"])
    cfg.grid_size = tuple(manifest["grid"])
    return Probe(cfg)


def _atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_probe(probe: Probe, cache: dict, run: ProbeRunConfig, ckpt_path: Path | None = None,
                log_every: int = 10, progress: bool = True) -> list[dict]:
    """Train ``probe`` on cached tokens for ``run.steps`` steps; resumes from ``ckpt_path`` if it exists.

    Returns the logged loss terms (one dict per ``log_every`` steps, with ``step``).
    """
    torch.manual_seed(run.seed)
    opt = torch.optim.AdamW(probe.parameters(), lr=run.lr, weight_decay=run.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, run.warmup_steps, run.steps))
    loss_cfg = run.loss_config()
    start, history = 0, []
    if ckpt_path is not None and ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        probe.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start, history = int(state["step"]), list(state.get("history", []))
    m = cache["tokens"].shape[0]
    hw = tuple(cache["depth"].shape[-2:])
    probe.train()
    bar = tqdm(range(start, run.steps), initial=start, total=run.steps, desc="probe", unit="step",
               dynamic_ncols=True, disable=not progress or None)
    for step in bar:
        g = torch.Generator().manual_seed(run.seed * 1_000_003 + step)
        idx = torch.randint(0, m, (min(run.batch_size, m),), generator=g) if m > run.batch_size else torch.randperm(m, generator=g)
        batch = batch_from_cache(cache, idx)
        pred = probe(batch["tokens"], image_hw=hw)
        loss, terms = probe_loss(pred, batch, loss_cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if run.grad_clip:
            torch.nn.utils.clip_grad_norm_(probe.parameters(), run.grad_clip)
        opt.step()
        sched.step()
        if (step + 1) % log_every == 0 or step + 1 == run.steps:
            history.append({"step": step + 1, **{k: float(v) for k, v in terms.items()}, "lr": sched.get_last_lr()[0]})
            bar.set_postfix(loss=f"{float(terms['total']):.4f}")
            if progress and bar.disable and (step + 1) % (10 * log_every) == 0:  # no terminal: plain log lines
                print(f"probe step {step + 1}/{run.steps} " + " ".join(f"{k}={float(v):.4f}" for k, v in terms.items()),
                      flush=True)
        if ckpt_path is not None and ((step + 1) % run.ckpt_every == 0 or step + 1 == run.steps):
            _atomic_torch_save({"model": probe.state_dict(), "optimizer": opt.state_dict(),
                                "scheduler": sched.state_dict(), "step": step + 1, "history": history,
                                "probe_config": probe.cfg.to_dict()}, ckpt_path)
    probe.eval()
    return history


@torch.no_grad()
def predict(probe: Probe, tokens: torch.Tensor, image_hw: tuple[int, int]) -> dict[str, np.ndarray]:
    """One clip's predictions (numpy, no batch axis) from its tokens ``[S, N, C]``."""
    out = probe(tokens[None].float(), image_hw=image_hw)
    return {k: v[0].cpu().numpy() for k, v in out.items()}


def evaluate(probe: Probe, cache: dict, alignment: Alignment = Alignment.SCALE) -> tuple[dict, list[dict]]:
    """Score every cached clip; returns the summary (with ``per_clip`` values, clip order) and the
    per-clip predictions."""
    probe.eval()
    metrics = ProbeMetrics(alignment)
    preds = []
    hw = tuple(cache["depth"].shape[-2:])
    for i in tqdm(range(cache["tokens"].shape[0]), desc="eval", unit="clip", dynamic_ncols=True, disable=None):
        pred = predict(probe, cache["tokens"][i], hw)
        sample = {k: cache[k][i].numpy() for k in ("depth", "K", "T_wc", "points_ref")}
        sample["valid"] = cache["valid"][i].numpy().astype(bool)
        metrics.add(pred, sample)
        preds.append(pred)
    return {**metrics.summary(), "per_clip": metrics.per_clip()}, preds


# ----------------------------------------------------------------------------- classical baseline


def orb_relative_pose(img_a: np.ndarray, img_b: np.ndarray, K_a: np.ndarray, K_b: np.ndarray,
                      n_features: int = 2000) -> np.ndarray | None:
    """Pose of camera b in camera a (``T_ab [4, 4]``, unit translation) from ORB + essential matrix.

    ``img_*``: ``[3, H, W]`` float in [0, 1] or uint8. OpenCV keypoints put pixel centres at integer
    coordinates, so 0.5 is added before normalising with K (our half-pixel convention). Returns
    None when matching or RANSAC fails.
    """
    import cv2

    def gray(img):
        img = np.asarray(img)
        img = (img * 255).round().astype(np.uint8) if img.dtype != np.uint8 else img
        return cv2.cvtColor(np.ascontiguousarray(img.transpose(1, 2, 0)), cv2.COLOR_RGB2GRAY)

    orb = cv2.ORB_create(nfeatures=n_features, edgeThreshold=8, patchSize=15, fastThreshold=5)
    ka, da = orb.detectAndCompute(gray(img_a), None)
    kb, db = orb.detectAndCompute(gray(img_b), None)
    if da is None or db is None or len(ka) < 5 or len(kb) < 5:
        return None
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(da, db)
    if len(matches) < 8:
        return None
    pa = np.float64([ka[m.queryIdx].pt for m in matches]) + 0.5
    pb = np.float64([kb[m.trainIdx].pt for m in matches]) + 0.5
    return essential_relative_pose(pa, pb, K_a, K_b)


def essential_relative_pose(uv_a: np.ndarray, uv_b: np.ndarray, K_a: np.ndarray, K_b: np.ndarray,
                            threshold_px: float = 1.0) -> np.ndarray | None:
    """``T_ab [4, 4]`` (pose of camera b in camera a, unit translation) from matched pixels
    ``uv_a, uv_b [M, 2]`` (half-pixel convention) by an essential matrix with RANSAC."""
    import cv2

    def normalise(p, K):
        K = np.asarray(K, dtype=np.float64)
        return np.c_[(p[:, 0] - K[0, 2]) / K[0, 0], (p[:, 1] - K[1, 2]) / K[1, 1]]

    if len(uv_a) < 5:
        return None
    na, nb = normalise(np.asarray(uv_a, np.float64), K_a), normalise(np.asarray(uv_b, np.float64), K_b)
    thresh = threshold_px / float(np.mean([K_a[0, 0], K_a[1, 1]]))
    E, inl = cv2.findEssentialMat(na, nb, np.eye(3), method=cv2.RANSAC, prob=0.999, threshold=thresh)
    if E is None or E.shape != (3, 3):
        return None
    _, R, t, _ = cv2.recoverPose(E, na, nb, np.eye(3), mask=inl)
    T_ba = geo.make_transform(R, t.ravel())  # x_b = R x_a + t
    return geo.se3_inverse(T_ba)


def orb_pose_errors(images: np.ndarray, K: np.ndarray, T_wc: np.ndarray, n_features: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Rotation / translation-direction errors (degrees) of ORB poses over all ordered pairs of a clip
    (the pairs and error definition of ``geometry.pairwise_relative_pose_errors``); failures count 180°."""
    s = len(images)
    r_err, t_err = [], []
    for i in range(s):
        for j in range(s):
            if i == j:
                continue
            T_gt = geo.relative_pose(T_wc[i], T_wc[j])
            T_est = orb_relative_pose(images[i], images[j], K[i], K[j], n_features)
            if T_est is None:
                r_err.append(180.0)
                t_err.append(180.0)
                continue
            r_err.append(float(geo.rotation_angle_deg(T_est[:3, :3], T_gt[:3, :3])))
            t_err.append(float(geo.translation_angle_deg(T_est[:3, 3], T_gt[:3, 3])))
    return np.array(r_err), np.array(t_err)


def orb_baseline(cache: dict, n_features: int = 2000) -> dict:
    r_all, t_all = [], []
    for i in tqdm(range(cache["images"].shape[0]), desc="orb", unit="clip", dynamic_ncols=True, disable=None):
        r, t = orb_pose_errors(cache["images"][i].numpy(), cache["K"][i].numpy().astype(np.float64),
                               cache["T_wc"][i].numpy().astype(np.float64), n_features)
        r_all.append(r)
        t_all.append(t)
    return pose_auc_table(np.concatenate(r_all), np.concatenate(t_all))


# ----------------------------------------------------------------------------- reporting


def _fmt(x, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def markdown_table(results: list[dict]) -> str:
    """The papers' table: one row per encoder, then the ORB baseline rows (pose only)."""
    lines = [
        "| Encoder | Point Err ↓ (×10) | Depth AbsRel ↓ | δ<1.25 ↑ | AUC@30 ↑ | AUC@15 ↑ | AUC@5 ↑ |",
        "|---|---|---|---|---|---|---|",
    ]
    orb_rows = {}
    for r in results:
        t = r["test"]
        lines.append(f"| {r['encoder']} | {_fmt(t['point_err_x10'])} | {_fmt(t['depth_abs_rel'])} | "
                     f"{_fmt(t['depth_delta1'])} | {_fmt(t['auc@30'])} | {_fmt(t['auc@15'])} | {_fmt(t['auc@5'])} |")
        if r.get("orb"):
            orb_rows[r["data"]] = r["orb"]
    for o in orb_rows.values():
        lines.append(f"| ORB + essential (RANSAC) | – | – | – | {_fmt(o['auc@30'])} | {_fmt(o['auc@15'])} | {_fmt(o['auc@5'])} |")
    return "\n".join(lines) + "\n"


def save_visualisation(path: Path, cache: dict, preds: list[dict], num: int) -> None:
    """RGB, GT depth, predicted depth (median-scaled), and GT vs predicted clouds (top view) per clip."""
    try:
        import matplotlib
    except ImportError:  # the train extra should bring it; the benchmark's numbers do not need it
        print(f"matplotlib is not installed: {path.name} not written", file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num = min(num, len(preds))
    if num == 0:
        return
    fig, axes = plt.subplots(num, 4, figsize=(13, 3.2 * num), squeeze=False)
    for row in range(num):
        img = cache["images"][row, 0].permute(1, 2, 0).numpy()
        gt = cache["depth"][row, 0].numpy()
        valid = cache["valid"][row, 0].numpy().astype(bool)
        pd = preds[row]["depth"][0]
        scale = np.median(gt[valid]) / max(np.median(pd[valid]), 1e-9) if valid.any() else 1.0
        vmax = float(gt[valid].max()) if valid.any() else 1.0
        axes[row, 0].imshow(img)
        axes[row, 1].imshow(np.where(valid, gt, np.nan), vmin=0, vmax=vmax, cmap="turbo")
        axes[row, 2].imshow(np.where(valid, pd * scale, np.nan), vmin=0, vmax=vmax, cmap="turbo")
        v_all = cache["valid"][row].numpy().astype(bool)
        g = cache["points_ref"][row].numpy()[v_all]
        p = preds[row]["points"][v_all]
        g = g / max(np.linalg.norm(g, axis=-1).mean(), 1e-9)
        if np.any(p):
            p = p * geo.scale_alignment(p, g)
        sel = np.random.default_rng(0).choice(len(g), size=min(4000, len(g)), replace=False) if len(g) else []
        axes[row, 3].scatter(g[sel, 0], g[sel, 2], s=0.5, c="tab:blue", label="GT")
        axes[row, 3].scatter(p[sel, 0], p[sel, 2], s=0.5, c="tab:orange", label="pred")
        axes[row, 3].set_aspect("equal")
        axes[row, 3].legend(loc="upper right", markerscale=8, fontsize=7)
        for ax, title in zip(axes[row], ("RGB (ref)", "GT depth", "pred depth (median-scaled)", "clouds x–z (ref cam)")):
            ax.set_title(title, fontsize=9)
            if title != "clouds x–z (ref cam)":
                ax.axis("off")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)


PAIRED_KEYS = (("point_err_x10", "Point Err (×10)", True), ("depth_abs_rel", "Depth AbsRel", True),
               ("depth_delta1", "δ<1.25", False), ("pose_err_deg_median", "pose err (°, clip median)", True))


def paired_table(results: list[dict], baseline: dict) -> str:
    """Each run against ``baseline`` on the same test clips: mean difference [95 % bootstrap CI] and
    the share of clips where the run is better, per metric (markdown).

    Raises ``ValueError`` when a run has no per-clip values or was scored on other clips.
    """
    def clips_of(r):
        c = r["config"]
        return (r["data"], c["test_split"], c["num_frames"], c["min_gap"], c["seed"], c["test_samples_per_clip"],
                c["max_test_clips"], r["test"].get("clips"))

    def per_clip(r):
        if "per_clip" not in r["test"]:
            raise ValueError(f"{r['encoder']}: results.json has no per-clip values (re-run the probe to rescore)")
        return r["test"]["per_clip"]

    base = per_clip(baseline)
    head = " | ".join(f"Δ {name}" for _, name, _ in PAIRED_KEYS)
    lines = [f"| Encoder vs {baseline['encoder']} | {head} |", "|---" * (len(PAIRED_KEYS) + 1) + "|"]
    for r in results:
        if r is baseline:
            continue
        values = per_clip(r)
        if clips_of(r) != clips_of(baseline):
            raise ValueError(f"{r['encoder']} and {baseline['encoder']} were scored on different test clips")
        cells = []
        for key, _, lower in PAIRED_KEYS:
            c = paired_comparison(values[key], base[key], lower_is_better=lower)
            cells.append(f"{c['mean_diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}], better on "
                         f"{100 * c['better_frac']:.0f} % of {c['n']}")
        lines.append(f"| {r['encoder']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- entry point


def write_results(out: Path, results: dict, cache: dict, preds: list[dict], num_vis: int) -> None:
    """``results.json``, ``results.md`` (the papers' table) and ``predictions.png`` into ``out``."""
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(markdown_table([results]))
    save_visualisation(out / "predictions.png", cache, preds, num_vis)


def _refuse_other_weights(manifest: dict, spec: str, cache_dir: Path) -> None:
    """A ``student:…encoder.onnx`` SPEC names a file whose weights can change under the same name
    (a re-export); its cached features must come from the file as it is now (sha256), else stop."""
    from distill.encoders import onnx_file_of_spec

    cached = (manifest.get("encoder") or {}).get("sha256")
    onnx = onnx_file_of_spec(spec)
    if cached is None or onnx is None or manifest.get("spec") != spec:
        return
    now = hashlib.sha256(onnx.read_bytes()).hexdigest()
    if now != cached:
        raise ValueError(f"{cache_dir} holds features of {spec} with sha256 {cached[:12]}…, but that file is now "
                         f"{now[:12]}… (re-exported?): use a new --out for the new weights")


def cache_splits(spec: str, data: str, out: Path, run: ProbeRunConfig) -> dict[str, dict]:
    """Encode the train and test splits once into ``out/cache/<split>`` (skipped where a complete
    cache of the same encoder spec and sampling exists); returns each split's manifest."""
    from distill.encoders import parse_encoder_spec

    encoder = None
    manifests = {}
    for split, limit in ((run.train_split, run.max_train_clips), (run.test_split, run.max_test_clips)):
        cdir = out / "cache" / split
        manifest_path = cdir / "manifest.json"
        per_clip = run.train_samples_per_clip if split == run.train_split else run.test_samples_per_clip
        source = {"data": data, "split": split, "samples_per_clip": per_clip, "num_frames": run.num_frames,
                  "min_gap": run.min_gap, "seed": run.seed, "limit": limit}
        old = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
        _refuse_other_weights(old, spec, cdir)
        if old.get("complete") and old.get("spec") == spec and old.get("source") == source:
            manifests[split] = old  # cached by an earlier run: the encoder is not even loaded
        else:
            encoder = encoder or parse_encoder_spec(spec)
            clips = load_clips(data, split, per_clip, run.num_frames, run.min_gap, run.seed)
            manifests[split] = cache_features(encoder, clips, cdir, spec, run.cache_shard, limit,
                                              desc=f"cache {split}", source=source)
    return manifests


def run_probe(spec: str, data: str, out: Path, run: ProbeRunConfig, progress: bool = True) -> dict:
    """The whole benchmark for one encoder; returns (and writes) the results dict."""
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    manifests = cache_splits(spec, data, out, run)
    caches = {split: load_cached_split(out / "cache" / split, keys=TRAIN_KEYS if split == run.train_split else None)
              for split in (run.train_split, run.test_split)}
    t_cache = time.time() - t0
    probe = build_probe(run, manifests[run.train_split])
    t1 = time.time()
    history = train_probe(probe, caches[run.train_split], run, out / "checkpoint.pt", progress=progress)
    t_train = time.time() - t1
    summary, preds = evaluate(probe, caches[run.test_split], Alignment(run.alignment))
    orb = orb_baseline(caches[run.test_split], run.orb_features)
    results = {
        "encoder": spec,
        "encoder_info": manifests[run.train_split].get("encoder"),
        "data": data,
        "command": " ".join(["python -m distill.probe"] + sys.argv[1:]) if sys.argv[0].endswith("probe.py") else None,
        "config": dataclasses.asdict(run),
        "probe_config": probe.cfg.to_dict(),
        "train": {"clips": int(caches[run.train_split]["tokens"].shape[0]), "steps": run.steps,
                  "final": history[-1] if history else None, "seconds": round(t_train, 1)},
        "cache_seconds": round(t_cache, 1),
        "test": summary,
        "orb": orb,
    }
    write_results(out, results, caches[run.test_split], preds, run.num_vis)
    return results


class ArtifactHeads:
    """A student artifact's own heads in the probe's place, run by the robot runtime's engine.

    Scores what the robot runs: the heads trained with the encoder, not a fresh probe.
    Called like :class:`Probe`: ``tokens [1, S, N, C]`` -> dict of the five outputs.
    """

    def __init__(self, model_dir: str | Path, threads: int = 1) -> None:
        from vega_ros.engine.selection import create_engine

        self.engine, _ = create_engine(str(model_dir), "onnxruntime-cpu", intra_op_threads=threads)
        self.card = self.engine.card

    def eval(self) -> ArtifactHeads:
        return self

    def __call__(self, tokens: torch.Tensor, image_hw: tuple[int, int] | None = None) -> dict[str, torch.Tensor]:
        out = self.engine.run_heads(tokens.float().numpy())
        return {k: torch.from_numpy(getattr(out, k)) for k in OUTPUT_NAMES}


def score_own_heads(model_dir: str | Path, probe_out: Path, run: ProbeRunConfig) -> dict:
    """Score an artifact's own heads on the test features a probe run of its encoder cached.

    ``probe_out`` is that run's ``--out``; its cache must come from this artifact's ``encoder.onnx``
    (sha256 checked). Writes ``probe_out/own_heads/results.{json,md}`` in the probe's format.
    """
    from vega_ros.artifact import ENCODER_FILE

    heads = ArtifactHeads(model_dir)
    manifest = json.loads((probe_out / "cache" / run.test_split / "manifest.json").read_text())
    measured = manifest.get("encoder", {}).get("sha256")
    if measured != heads.card.files[ENCODER_FILE]:
        raise ValueError(f"{probe_out}: features cached from encoder sha256 {measured}, not {model_dir}'s encoder.onnx")
    cache = load_cached_split(probe_out / "cache" / run.test_split)
    summary, preds = evaluate(heads, cache, Alignment(run.alignment))
    out = probe_out / "own_heads"
    out.mkdir(exist_ok=True)
    results = {"encoder": f"{manifest['spec']} (own heads)", "encoder_info": manifest.get("encoder"),
               "data": manifest["source"]["data"], "command": " ".join(["python -m distill.probe"] + sys.argv[1:]),
               "config": dataclasses.asdict(run), "test": summary, "orb": orb_baseline(cache, run.orb_features)}
    write_results(out, results, cache, preds, run.num_vis)
    return results


METRIC_KEYS = ("point_err_x10", "depth_abs_rel", "depth_delta1", "auc@30", "auc@15", "auc@5")


def record_in_card(model_dir: str | Path, results: list[dict]) -> dict:
    """Write a probe table into a student artifact's ``card.json`` (``metrics.probe``).

    ``results[0]`` must be the run of this artifact's own ``encoder.onnx``: its recorded sha256 has
    to equal the card's, so a card never carries numbers measured on other weights. The other runs
    (floor, controls) are stored as the comparison rows. Returns the ``metrics`` written.
    """
    from vega_ros.artifact import ENCODER_FILE, read_card, write_card

    card = read_card(str(model_dir))
    own = results[0]
    measured = (own.get("encoder_info") or {}).get("sha256")
    if measured != card.files.get(ENCODER_FILE):
        raise ValueError(f"{model_dir}: the first run measured encoder sha256 {measured}, "
                         f"the card's {ENCODER_FILE} is {card.files.get(ENCODER_FILE)}")
    rows = [{"encoder": r["encoder"], **{k: r["test"].get(k) for k in METRIC_KEYS}} for r in results]
    metrics = {k: v for k, v in card.metrics.items() if k != "note"}
    metrics["probe"] = {
        "data": own["data"], "split": own["config"]["test_split"], "command": own.get("command"),
        "config": {k: own["config"][k] for k in ("steps", "batch_size", "lr", "num_frames", "min_gap", "train_samples_per_clip")},
        "rows": rows, "orb": {k: own["orb"].get(k) for k in ("auc@30", "auc@15", "auc@5")} if own.get("orb") else None}
    write_card(str(model_dir), dataclasses.replace(card, metrics=metrics))
    return metrics


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m distill.probe", description=__doc__.split("\n\n")[0])
    ap.add_argument("--encoder", help="random-vit-ti | random-cnn | pixels | student:PATH | wan:PATH | hf:PATH")
    ap.add_argument("--data", help="dataset directory, or synthetic:N[:HxW]")
    ap.add_argument("--out", type=Path, help="output directory (cache, checkpoint, results)")
    ap.add_argument("--config", type=Path, default=Path(__file__).resolve().parents[1] / "config/probe/cpu.yaml")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--max-train-clips", type=int)
    ap.add_argument("--max-test-clips", type=int)
    ap.add_argument("--min-gap", type=int)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override any ProbeRunConfig field (VALUE is parsed as YAML), repeatable")
    ap.add_argument("--table", nargs="+", type=Path, metavar="OUT", help="print one table from runs' results.json")
    ap.add_argument("--cache-only", action="store_true",
                    help="only encode the splits into --out/cache (e.g. before --own-heads); no probe training")
    ap.add_argument("--own-heads", type=Path, metavar="MODEL_DIR",
                    help="score this artifact's own heads.onnx on the test features cached in --out by a probe run of its encoder")
    ap.add_argument("--versus", type=Path, metavar="OUT",
                    help="with --table: also compare every run with this run clip by clip (paired bootstrap CIs)")
    ap.add_argument("--record-in-card", type=Path, metavar="MODEL_DIR",
                    help="with --table: write the table into this student artifact's card (first run = its encoder)")
    args = ap.parse_args(argv)
    if args.table:
        results = [json.loads((p / "results.json").read_text()) for p in args.table]
        print(markdown_table(results), end="")
        if args.versus:
            same = [r for path, r in zip(args.table, results) if path.resolve() == args.versus.resolve()]
            baseline = same[0] if same else json.loads((args.versus / "results.json").read_text())
            print("\n" + paired_table(results, baseline), end="")
        if args.record_in_card:
            record_in_card(args.record_in_card, results)
            print(f"recorded in {args.record_in_card / 'card.json'}")
        return 0
    if not (args.own_heads and args.out) and not (args.encoder and args.data and args.out):
        ap.error("--encoder, --data and --out are required (or --table, or --own-heads with --out)")
    import yaml

    extra = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--set wants KEY=VALUE, got {item!r}")
        extra[key] = yaml.safe_load(value)
    run = ProbeRunConfig.from_yaml(args.config, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                   max_train_clips=args.max_train_clips, max_test_clips=args.max_test_clips,
                                   min_gap=args.min_gap, **extra)
    if args.own_heads:
        score_own_heads(args.own_heads, args.out, run)
        print((args.out / "own_heads" / "results.md").read_text(), end="")
        return 0
    if args.cache_only:
        for split, manifest in cache_splits(args.encoder, args.data, args.out, run).items():
            print(f"cached {split}: {args.out / 'cache' / split} ({manifest.get('count', '?')} samples)")
        return 0
    results = run_probe(args.encoder, args.data, args.out, run)
    print((args.out / "results.md").read_text(), end="")
    print(f"results: {args.out / 'results.json'}")
    return 0 if results else 1


if __name__ == "__main__":
    sys.exit(main())
