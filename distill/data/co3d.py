"""Reader for the CO3Dv2 on-disk layout, returning the probe sample structure (``distill.data.sample``).

Layout (as released)::

    ROOT/<category>/frame_annotations.jgz        gzipped JSON list, one dict per frame
    ROOT/<category>/<sequence>/images/frame000001.jpg
    ROOT/<category>/<sequence>/depths/frame000001.jpg.geometric.png
    ROOT/<category>/<sequence>/depth_masks/frame000001.png

Paths inside the annotations are relative to ROOT. A frame annotation has ``image.size = [H, W]``,
``depth.path``, ``depth.scale_adjustment``, ``depth.mask_path`` and ``viewpoint`` with ``R``, ``T``,
``focal_length``, ``principal_point`` and ``intrinsics_format``.

Conversions to our conventions (OpenCV camera, ``T_wc`` world-from-camera, half-pixel K):

- **Extrinsics.** CO3D stores PyTorch3D cameras: row vectors, ``X_view = X_world @ R + T``, i.e.
  ``x_view = R^T x_world + T``, with view axes +X left, +Y up, +Z forward. OpenCV flips x and y:
  ``F = diag(-1, -1, 1)``, ``R_cw = F R^T``, ``t_cw = F T``, and ``T_wc = inv([R_cw | t_cw])``.
- **Intrinsics.** ``focal_length`` and ``principal_point`` are in PyTorch3D NDC. With
  ``half = (W / 2, H / 2)`` and ``s = min(W, H) / 2`` for ``ndc_isotropic`` (CO3Dv2) or ``s = half``
  per axis for ``ndc_norm_image_bounds`` (v1): ``f_px = f_ndc * s`` and ``c_px = half - p_ndc * s``
  (NDC +X points left and +Y up, hence the minus). NDC +-s spans the image borders, so pixel
  centres sit at (j + 0.5, i + 0.5): the same half-pixel convention as ``vega_ros.geometry``.
- **Depth.** The PNG's 16-bit words are float16 bit patterns; ``depth = float16 * scale_adjustment``
  is z-depth along the optical axis in the sequence's (COLMAP) units: CO3D has no metric scale.
  Pixels outside the depth mask, non-finite or <= 0 are invalid (0).
"""

from __future__ import annotations

import gzip
import json
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from torch.utils.data import Dataset

from distill.data.resize import fit_frame
from distill.data.sample import make_sample, sample_frame_ids
from distill.data.shards import ShardError
from vega_ros.geometry import make_transform, se3_inverse

_FLIP_XY = np.diag([-1.0, -1.0, 1.0])


def co3d_intrinsics(focal_ndc, principal_ndc, image_hw: tuple[int, int], fmt: str = "ndc_isotropic") -> np.ndarray:
    """Pixel intrinsics ``K [3, 3]`` (half-pixel convention) from CO3D / PyTorch3D NDC intrinsics."""
    H, W = image_hw
    half = np.array([W / 2.0, H / 2.0])
    if fmt.lower() == "ndc_isotropic":
        s = np.full(2, min(W, H) / 2.0)
    elif fmt.lower() == "ndc_norm_image_bounds":
        s = half
    else:
        raise ValueError(f"unknown CO3D intrinsics_format {fmt!r}")
    f = np.asarray(focal_ndc, np.float64) * s
    c = half - np.asarray(principal_ndc, np.float64) * s
    return np.array([[f[0], 0.0, c[0]], [0.0, f[1], c[1]], [0.0, 0.0, 1.0]])


def co3d_pose(R, T) -> np.ndarray:
    """``T_wc [4, 4]`` (OpenCV axes) from a PyTorch3D camera ``(R [3, 3], T [3])`` as stored by CO3D."""
    R = np.asarray(R, np.float64)
    T = np.asarray(T, np.float64)
    return se3_inverse(make_transform(_FLIP_XY @ R.T, _FLIP_XY @ T))


def load_co3d_depth(path: Path, scale_adjustment: float) -> np.ndarray:
    """``[H, W]`` float32 z-depth from a CO3D ``*.geometric.png`` (float16 bits in a 16-bit PNG)."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16 or raw.ndim != 2:
        raise ShardError(f"cannot read CO3D depth {path} as a single-channel 16-bit PNG")
    depth = raw.view(np.float16).astype(np.float32) * np.float32(scale_adjustment)
    return np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)


@lru_cache(maxsize=64)
def _load_annotations(path: str) -> tuple[dict, ...]:
    try:
        with gzip.open(path, "rt") as f:
            return tuple(json.load(f))
    except (OSError, EOFError, json.JSONDecodeError) as e:
        raise ShardError(f"cannot read CO3D annotations {path}: {e}") from e


class Co3dSequence:
    """The frames of one CO3D sequence, sorted by frame number."""

    def __init__(self, root: str | Path, category: str, sequence: str):
        self.root = Path(root)
        self.category, self.name = category, sequence
        ann = _load_annotations(str(self.root / category / "frame_annotations.jgz"))
        self.frames = sorted((a for a in ann if a["sequence_name"] == sequence), key=lambda a: a["frame_number"])
        if not self.frames:
            raise ShardError(f"{self.root / category / 'frame_annotations.jgz'}: no frames of sequence {sequence!r}")

    def __len__(self) -> int:
        return len(self.frames)

    def load_frame(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Frame ``k``: ``rgb [H, W, 3] uint8, depth [H, W] float32 (0 invalid), K [3, 3], T_wc [4, 4]``."""
        a = self.frames[k]
        img_path = self.root / a["image"]["path"]
        bgr = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ShardError(f"cannot read CO3D image {img_path}")
        rgb = bgr[..., ::-1]
        H, W = a["image"]["size"]
        if rgb.shape[:2] != (H, W):
            raise ShardError(f"{img_path}: size {rgb.shape[:2]} but the annotation says {(H, W)}")
        vp = a["viewpoint"]
        K = co3d_intrinsics(vp["focal_length"], vp["principal_point"], (H, W), vp.get("intrinsics_format", "ndc_isotropic"))
        T_wc = co3d_pose(vp["R"], vp["T"])
        depth = np.zeros((H, W), np.float32)
        d = a.get("depth") or {}
        if d.get("path"):
            depth = load_co3d_depth(self.root / d["path"], d.get("scale_adjustment", 1.0))
            if depth.shape != (H, W):  # depth maps may be stored smaller; nearest keeps edges crisp
                depth = cv2.resize(depth, (W, H), interpolation=cv2.INTER_NEAREST)
            if d.get("mask_path") and (self.root / d["mask_path"]).is_file():
                mask = cv2.imread(str(self.root / d["mask_path"]), cv2.IMREAD_GRAYSCALE)
                if mask is not None:
                    if mask.shape != (H, W):
                        mask = cv2.resize(mask, (W, H), interpolation=cv2.INTER_NEAREST)
                    depth[mask == 0] = 0.0
        return rgb, depth, K, T_wc

    def sample(self, frame_ids, size_hw: tuple[int, int] | None = None) -> dict:
        """The probe sample of ``frame_ids`` (the first is the reference), optionally fitted to ``size_hw``."""
        frames = [self.load_frame(int(k)) for k in frame_ids]
        if size_hw is not None:
            frames = [(*fit_frame(r, d, K, size_hw), T) for r, d, K, T in frames]
        rgb, depth, K, T_wc = (np.stack(x) for x in zip(*frames))
        return make_sample(rgb, depth, K, T_wc, np.asarray(frame_ids), f"co3d/{self.category}/{self.name}")


def list_sequences(root: str | Path, categories: list[str] | None = None) -> list[tuple[str, str]]:
    """``(category, sequence)`` pairs under a CO3Dv2 root (categories = folders with frame_annotations.jgz)."""
    root = Path(root)
    cats = categories or sorted(p.parent.name for p in root.glob("*/frame_annotations.jgz"))
    out = []
    for c in cats:
        ann = _load_annotations(str(root / c / "frame_annotations.jgz"))
        out += [(c, s) for s in sorted({a["sequence_name"] for a in ann})]
    return out


class Co3dDataset(Dataset):
    """Probe samples from CO3Dv2 sequences: ``num_frames`` frames ``min_gap`` apart, fitted to ``size_hw``.

    ``split`` keeps the sequences :func:`distill.data.sources.scene_split` puts there (by the name
    ``category/sequence``; None keeps all); ``samples_per_clip`` frame choices per sequence.
    """

    def __init__(self, root: str | Path, categories: list[str] | None = None, num_frames: int = 4, min_gap: int = 5,
                 size_hw: tuple[int, int] = (224, 224), seed: int = 0, split: str | None = None,
                 samples_per_clip: int = 1):
        from distill.data.sources import scene_split

        self.root = Path(root)
        self.sequences = [(c, s) for c, s in list_sequences(root, categories)
                          if split is None or scene_split(f"{c}/{s}") == split]
        if not self.sequences:
            raise ShardError(f"{self.root}: no CO3D sequences" + (f" in split '{split}'" if split else "")
                             + " (categories are folders with frame_annotations.jgz)")
        self.num_frames, self.min_gap, self.size_hw, self.seed = num_frames, min_gap, size_hw, seed
        self.samples_per_clip = samples_per_clip

    def __len__(self) -> int:
        return len(self.sequences) * self.samples_per_clip

    def __getitem__(self, idx: int) -> dict:
        if not 0 <= idx < len(self):
            raise IndexError(idx)
        seq = Co3dSequence(self.root, *self.sequences[idx // self.samples_per_clip])
        frames = sample_frame_ids(len(seq), self.num_frames, self.min_gap, np.random.default_rng([self.seed, idx]))
        return seq.sample(frames, self.size_hw)
