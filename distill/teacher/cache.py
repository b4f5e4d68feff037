"""Teacher-feature cache: sharded fp16 safetensors + a JSON manifest, so training never re-runs WAN.

    CACHE/manifest.json
      format      "vega-teacher-cache/1"
      teacher     what produced the features (model_id, block, timestep, resolution, chunk_frames, seed, ...)
      feature     {"shape": [C, h, w], "dtype": "float16"}
      shards      [{"file": "shard-00000.safetensors", "rows": R, "bytes": N, "sha256": "..."}]
      clips       {clip_id: {"shard": i, "offset": o, "latents": n, "frames": T}}
    CACHE/shard-00000.safetensors
      "features"  [R, C, h, w] float16: the clips' latent feature rows back to back
      metadata    {"clips": JSON [[clip_id, offset, latents], ...]}

One row per *latent* frame (1 + ⌈(T−1)/4⌉ rows for a clip of T frames); per-frame targets are rows π(t) = ⌈t/4⌉
(`FeatureCache.features_per_frame`). Writes are atomic (temp file, fsync, rename; the manifest is rewritten
only after its shard is on disk), so a killed extraction resumes by skipping the clips the manifest lists.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Self

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from distill.teacher import chunking

FORMAT = "vega-teacher-cache/1"
MANIFEST = "manifest.json"


class CacheError(RuntimeError):
    """A cache that cannot be used as it is; the message names the file."""


class CacheMismatchError(CacheError):
    """The cache on disk was written with other teacher settings than the ones asked for."""


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _read_manifest(root: Path) -> dict | None:
    path = root / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CacheError(f"{path}: not valid JSON ({e})") from e
    if manifest.get("format") != FORMAT:
        raise CacheError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def _json_clean(value):
    """Round-trip through JSON so tuples and lists compare equal."""
    return json.loads(json.dumps(value))


class FeatureCacheWriter:
    """Append clips' latent features to a cache directory; resumes an existing cache with the same settings.

        with FeatureCacheWriter(out, teacher.describe()) as cache:
            for clip_id, video in clips:
                if clip_id not in cache:
                    cache.add(clip_id, teacher.latent_features(video), num_frames=len(video))
    """

    def __init__(self, root: str | Path, teacher: dict, shard_bytes: int = 512 << 20):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.shard_bytes = shard_bytes
        teacher = _json_clean(teacher)
        manifest = _read_manifest(self.root)
        if manifest is None:
            manifest = {"format": FORMAT, "teacher": teacher, "feature": None, "shards": [], "clips": {}}
        elif manifest["teacher"] != teacher:
            diff = sorted(k for k in set(manifest["teacher"]) | set(teacher)
                          if manifest["teacher"].get(k) != teacher.get(k))
            raise CacheMismatchError(
                f"{self.root / MANIFEST}: written with other teacher settings ({', '.join(diff)}: "
                f"{[manifest['teacher'].get(k) for k in diff]} on disk vs {[teacher.get(k) for k in diff]} asked); "
                "use another output directory")
        for stale in self.root.glob(".*.tmp"):
            stale.unlink()
        self.manifest = manifest
        self._pending: list[tuple[str, np.ndarray, int]] = []
        self._pending_bytes = 0

    def __contains__(self, clip_id: str) -> bool:
        return clip_id in self.manifest["clips"] or any(c == clip_id for c, _, _ in self._pending)

    def __len__(self) -> int:
        return len(self.manifest["clips"]) + len(self._pending)

    def add(self, clip_id: str, latent_features: torch.Tensor, num_frames: int) -> None:
        """Queue one clip: latent_features [1 + ⌈(T−1)/4⌉, C, h, w] (any float dtype), T = num_frames."""
        if clip_id in self:
            raise KeyError(f"clip {clip_id!r} is already in {self.root}")
        rows = chunking.num_video_latents(num_frames)
        if latent_features.ndim != 4 or latent_features.shape[0] != rows:
            raise ValueError(f"clip {clip_id!r}: expected [{rows}, C, h, w] for {num_frames} frames, "
                             f"got {tuple(latent_features.shape)}")
        shape = list(latent_features.shape[1:])
        if self.manifest["feature"] is None:
            self.manifest["feature"] = {"shape": shape, "dtype": "float16"}
        elif self.manifest["feature"]["shape"] != shape:
            raise ValueError(f"clip {clip_id!r}: feature shape {shape} differs from the cache's "
                             f"{self.manifest['feature']['shape']} (fix WanDiftConfig.resolution)")
        array = latent_features.detach().to("cpu", torch.float16).numpy()
        if not np.isfinite(array).all():
            raise ValueError(f"clip {clip_id!r}: features overflow float16 or are not finite "
                             f"(max |x| = {latent_features.abs().max().item():.3g})")
        self._pending.append((clip_id, array, num_frames))
        self._pending_bytes += array.nbytes
        if self._pending_bytes >= self.shard_bytes:
            self.flush()

    def flush(self) -> None:
        """Write queued clips as one shard, then the manifest that references it."""
        if not self._pending:
            return
        index = len(self.manifest["shards"])
        name = f"shard-{index:05d}.safetensors"
        entries, offset = [], 0
        for clip_id, array, _ in self._pending:
            entries.append([clip_id, offset, array.shape[0]])
            offset += array.shape[0]
        features = torch.from_numpy(np.concatenate([a for _, a, _ in self._pending]))
        path = self.root / name
        tmp = path.with_name(f".{name}.tmp")
        save_file({"features": features}, str(tmp), metadata={"clips": json.dumps(entries)})
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self.manifest["shards"].append({"file": name, "rows": offset, "bytes": path.stat().st_size,
                                        "sha256": _sha256(path)})
        for (clip_id, off, rows), (_, _, frames) in zip(entries, self._pending):
            self.manifest["clips"][clip_id] = {"shard": index, "offset": off, "latents": rows, "frames": frames}
        _atomic_write_bytes(self.root / MANIFEST, json.dumps(self.manifest, indent=1).encode())
        self._pending, self._pending_bytes = [], 0

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class FeatureCache:
    """Read a teacher-feature cache. Opening checks the manifest and every shard's size and header;
    `validate()` also checks checksums and shard contents. Errors are CacheError naming the bad file."""

    def __init__(self, root: str | Path, expect_teacher: dict | None = None):
        self.root = Path(root)
        manifest = _read_manifest(self.root)
        if manifest is None:
            raise CacheError(f"{self.root / MANIFEST}: missing (not a teacher-feature cache)")
        if expect_teacher is not None:
            want = _json_clean(expect_teacher)
            diff = sorted(k for k in want if manifest["teacher"].get(k) != want[k])
            if diff:
                raise CacheMismatchError(f"{self.root / MANIFEST}: teacher settings differ in {', '.join(diff)}")
        self.manifest = manifest
        self._handles: dict[int, object] = {}
        for i, shard in enumerate(manifest["shards"]):
            path = self.root / shard["file"]
            if not path.is_file():
                raise CacheError(f"{path}: shard listed in the manifest is missing")
            size = path.stat().st_size
            if size != shard["bytes"]:
                raise CacheError(f"{path}: {size} bytes on disk, manifest says {shard['bytes']} (truncated or replaced)")
            self._shape_of(i)

    @property
    def teacher(self) -> dict:
        return self.manifest["teacher"]

    @property
    def clip_ids(self) -> list[str]:
        return list(self.manifest["clips"])

    def __len__(self) -> int:
        return len(self.manifest["clips"])

    def __contains__(self, clip_id: str) -> bool:
        return clip_id in self.manifest["clips"]

    def _open(self, i: int):
        if i not in self._handles:
            path = self.root / self.manifest["shards"][i]["file"]
            try:
                self._handles[i] = safe_open(str(path), framework="pt", device="cpu")
            except Exception as e:  # safetensors raises its own error types for bad headers
                raise CacheError(f"{path}: unreadable safetensors file ({e})") from e
        return self._handles[i]

    def _shape_of(self, i: int) -> None:
        shard = self.manifest["shards"][i]
        path = self.root / shard["file"]
        f = self._open(i)
        try:
            shape = list(f.get_slice("features").get_shape())
        except Exception as e:
            raise CacheError(f"{path}: no 'features' tensor ({e})") from e
        want = [shard["rows"], *self.manifest["feature"]["shape"]]
        if shape != want:
            raise CacheError(f"{path}: features {shape}, manifest says {want}")

    def latent_features(self, clip_id: str) -> torch.Tensor:
        """[1 + ⌈(T−1)/4⌉, C, h, w] float16: one row per latent frame of the clip."""
        entry = self.manifest["clips"].get(clip_id)
        if entry is None:
            raise KeyError(f"clip {clip_id!r} is not in {self.root}")
        f = self._open(entry["shard"])
        return f.get_slice("features")[entry["offset"]:entry["offset"] + entry["latents"]]

    def frame_index(self, clip_id: str) -> np.ndarray:
        """π for the clip's frames: `[T] int64`, row of `latent_features` for each frame."""
        return chunking.frame_to_latent(self.manifest["clips"][clip_id]["frames"])

    def features_per_frame(self, clip_id: str, frames: list[int] | None = None) -> torch.Tensor:
        """[len(frames), C, h, w] float16 (all T frames when frames is None): frame t gets row π(t) = ⌈t/4⌉."""
        index = self.frame_index(clip_id)
        if frames is not None:
            index = index[np.asarray(frames, dtype=np.int64)]
        return self.latent_features(clip_id)[torch.from_numpy(index)]

    def validate(self) -> None:
        """Full check: checksums, shard metadata against the manifest, and finite values."""
        for i, shard in enumerate(self.manifest["shards"]):
            path = self.root / shard["file"]
            if _sha256(path) != shard["sha256"]:
                raise CacheError(f"{path}: sha256 differs from the manifest (corrupted)")
            f = self._open(i)
            entries = json.loads((f.metadata() or {}).get("clips", "[]"))
            for clip_id, offset, rows in entries:
                entry = self.manifest["clips"].get(clip_id)
                if entry is None or [entry["shard"], entry["offset"], entry["latents"]] != [i, offset, rows]:
                    raise CacheError(f"{path}: clip {clip_id!r} at rows {offset}+{rows} disagrees with the manifest")
            if not torch.isfinite(f.get_tensor("features")).all():
                raise CacheError(f"{path}: non-finite features")
        for clip_id, entry in self.manifest["clips"].items():
            if entry["latents"] != chunking.num_video_latents(entry["frames"]):
                raise CacheError(f"{self.root / MANIFEST}: clip {clip_id!r} has {entry['latents']} rows for "
                                 f"{entry['frames']} frames")


class FeatureCaches:
    """Several caches read as one (e.g. the CACHE/part-i outputs of parallel extractions).

    Teacher settings must agree and a clip may live in only one of them. Same reads as FeatureCache.
    """

    def __init__(self, roots: list[str | Path], expect_teacher: dict | None = None):
        if not roots:
            raise ValueError("no cache directories given")
        self.caches = [FeatureCache(r, expect_teacher) for r in roots]
        first = self.caches[0]
        self._where: dict[str, FeatureCache] = {}
        for cache in self.caches:
            if cache.teacher != first.teacher:
                raise CacheMismatchError(f"{cache.root / MANIFEST}: teacher settings differ from {first.root / MANIFEST}")
            for clip_id in cache.clip_ids:
                if clip_id in self._where:
                    raise CacheError(f"{cache.root / MANIFEST}: clip {clip_id!r} also in {self._where[clip_id].root}")
                self._where[clip_id] = cache

    @property
    def teacher(self) -> dict:
        return self.caches[0].teacher

    @property
    def clip_ids(self) -> list[str]:
        return list(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, clip_id: str) -> bool:
        return clip_id in self._where

    def _cache(self, clip_id: str) -> FeatureCache:
        if clip_id not in self._where:
            raise KeyError(f"clip {clip_id!r} is in none of {[str(c.root) for c in self.caches]}")
        return self._where[clip_id]

    def latent_features(self, clip_id: str) -> torch.Tensor:
        return self._cache(clip_id).latent_features(clip_id)

    def frame_index(self, clip_id: str) -> np.ndarray:
        return self._cache(clip_id).frame_index(clip_id)

    def features_per_frame(self, clip_id: str, frames: list[int] | None = None) -> torch.Tensor:
        return self._cache(clip_id).features_per_frame(clip_id, frames)

    def validate(self) -> None:
        for cache in self.caches:
            cache.validate()
