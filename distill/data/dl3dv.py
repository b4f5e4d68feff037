"""Reader for the DL3DV-10K on-disk layout (nerfstudio ``transforms.json``), returning the probe sample structure.

Layout (as released; the downsampled releases keep ``transforms.json`` and put frames in ``images_N``)::

    ROOT/<scene hash>/transforms.json
    ROOT/<scene hash>/images/frame_00001.png      (or images_2 / images_4 / images_8)

``transforms.json`` holds shared intrinsics ``fl_x, fl_y, cx, cy, w, h`` (pixels, at ``w x h``),
OpenCV distortion ``k1, k2, p1, p2`` and ``frames[*].file_path`` / ``transform_matrix``.

Conversions to our conventions:

- **Extrinsics.** ``transform_matrix`` is camera-to-world with OpenGL / Blender camera axes
  (x right, y up, z backward); OpenCV flips y and z: ``T_wc = transform_matrix @ diag(1, -1, -1, 1)``.
  Worlds differ between scenes (COLMAP's, possibly re-oriented by ``applied_transform``); only
  poses within one scene are meaningful, as the probe uses them.
- **Intrinsics.** nerfstudio casts rays through pixel centres (offset 0.5) with the image spanning
  ``[0, w]``: our half-pixel convention, so ``K = [[fl_x, 0, cx], [0, fl_y, cy], [0, 0, 1]]``, scaled
  by the actual image size over ``(w, h)`` when frames come from a downsampled folder.
- **Distortion.** With nonzero ``k1, k2, p1, p2`` frames are undistorted (``cv2.undistort``, same K).
- **Depth.** DL3DV has none: ``depth`` is 0 and ``valid`` False everywhere (poses and images only).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from torch.utils.data import Dataset

from distill.data.resize import fit_frame
from distill.data.sample import make_sample, sample_frame_ids
from distill.data.shards import ShardError
from vega_ros.geometry import scale_intrinsics

GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])
IMAGE_DIRS = ("images", "images_2", "images_4", "images_8")


def dl3dv_pose(transform_matrix) -> np.ndarray:
    """``T_wc [4, 4]`` (OpenCV axes) from a nerfstudio camera-to-world (OpenGL axes) matrix (3x4 or 4x4)."""
    M = np.asarray(transform_matrix, np.float64)
    if M.shape == (3, 4):
        M = np.vstack([M, [0.0, 0.0, 0.0, 1.0]])
    if M.shape != (4, 4):
        raise ValueError(f"transform_matrix must be 3x4 or 4x4, got {M.shape}")
    return M @ GL_TO_CV


class Dl3dvScene:
    """The frames of one DL3DV scene, in ``transforms.json`` order sorted by file name."""

    def __init__(self, scene_dir: str | Path, image_dir: str | None = None):
        self.dir = Path(scene_dir)
        path = self.dir / "transforms.json"
        try:
            self.meta = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ShardError(f"cannot read DL3DV transforms {path}: {e}") from e
        self.frames = sorted(self.meta["frames"], key=lambda f: f["file_path"])
        if not self.frames:
            raise ShardError(f"{path}: no frames")
        self.image_dir = image_dir
        m = self.meta
        self.K_full = np.array([[m["fl_x"], 0.0, m["cx"]], [0.0, m["fl_y"], m["cy"]], [0.0, 0.0, 1.0]])
        self.size_full = (int(m["w"]), int(m["h"]))
        self.dist = np.array([m.get(k, 0.0) for k in ("k1", "k2", "p1", "p2")], np.float64)

    def __len__(self) -> int:
        return len(self.frames)

    def image_path(self, k: int) -> Path:
        """The file of frame ``k``: ``file_path`` itself, else the same name in ``image_dir`` or images_N."""
        rel = Path(self.frames[k]["file_path"])
        dirs = [self.image_dir] if self.image_dir else [str(rel.parent), *IMAGE_DIRS]
        for d in dirs:
            p = self.dir / d / rel.name
            if p.is_file():
                return p
        raise ShardError(f"{self.dir}: image {rel.name} not found in {dirs}")

    def load_frame(self, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Frame ``k``: ``rgb [H, W, 3] uint8, depth [H, W] zeros, K [3, 3], T_wc [4, 4]``."""
        path = self.image_path(k)
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise ShardError(f"cannot read DL3DV image {path}")
        H, W = bgr.shape[:2]
        K = scale_intrinsics(self.K_full, W / self.size_full[0], H / self.size_full[1])
        if np.any(self.dist != 0):
            bgr = cv2.undistort(bgr, K, self.dist)
        T_wc = dl3dv_pose(self.frames[k]["transform_matrix"])
        return np.ascontiguousarray(bgr[..., ::-1]), np.zeros((H, W), np.float32), K, T_wc

    def sample(self, frame_ids, size_hw: tuple[int, int] | None = None) -> dict:
        """The probe sample of ``frame_ids`` (the first is the reference), optionally fitted to ``size_hw``."""
        frames = [self.load_frame(int(k)) for k in frame_ids]
        if size_hw is not None:
            frames = [(*fit_frame(r, d, K, size_hw), T) for r, d, K, T in frames]
        rgb, depth, K, T_wc = (np.stack(x) for x in zip(*frames))
        return make_sample(rgb, depth, K, T_wc, np.asarray(frame_ids), f"dl3dv/{self.dir.name}")


class Dl3dvDataset(Dataset):
    """Probe samples from every ``*/transforms.json`` scene under ``root``.

    ``split`` keeps the scenes :func:`distill.data.sources.scene_split` puts there (by folder name;
    None keeps all); ``samples_per_clip`` frame choices per scene.
    """

    def __init__(self, root: str | Path, num_frames: int = 4, min_gap: int = 5, size_hw: tuple[int, int] = (224, 224),
                 image_dir: str | None = None, seed: int = 0, split: str | None = None, samples_per_clip: int = 1):
        from distill.data.sources import scene_split

        self.root = Path(root)
        self.scenes = [p.parent for p in sorted(self.root.glob("*/transforms.json"))
                       if split is None or scene_split(p.parent.name) == split]
        if not self.scenes:
            raise ShardError(f"{self.root}: no */transforms.json" + (f" in split '{split}'" if split else ""))
        self.num_frames, self.min_gap, self.size_hw = num_frames, min_gap, size_hw
        self.image_dir, self.seed, self.samples_per_clip = image_dir, seed, samples_per_clip

    def __len__(self) -> int:
        return len(self.scenes) * self.samples_per_clip

    def __getitem__(self, idx: int) -> dict:
        if not 0 <= idx < len(self):
            raise IndexError(idx)
        scene = Dl3dvScene(self.scenes[idx // self.samples_per_clip], self.image_dir)
        frames = sample_frame_ids(len(scene), self.num_frames, self.min_gap, np.random.default_rng([self.seed, idx]))
        return scene.sample(frames, self.size_hw)
