"""On-disk format of rendered clips: sharded ``.npz`` files and an ``index.json``, written atomically.

Layout of an output folder::

    DIR/plan.json                 config + its digest (a resume must use the same config)
    DIR/index.json                one row per clip (written when a run completes)
    DIR/<split>/<suite>_tNN_sNNN.npz   one shard: up to ``clips_per_shard`` clips of one task

A shard holds, for each clip slot ``k`` (``cKK`` = ``c00``, ``c01``, ...), separately stored so a
reader decompresses only the clip it needs:

- ``cKK_rgb``    ``[T, H, W, 3]`` uint8, RGB, row 0 = top of the image
- ``cKK_depth``  ``[T, H, W]`` uint16, z-depth in units of ``depth_unit_m`` (0 = invalid)
- ``cKK_K``      ``[T, 3, 3]`` float64 intrinsics (pixels; pixel (i, j) centre at (j + 0.5, i + 0.5))
- ``cKK_T_wc``   ``[T, 4, 4]`` float64 world-from-camera, OpenCV axes (x right, y down, z forward), metres
- ``meta``       0-d unicode array: JSON with the format, depth unit and one metadata dict per clip

Writes go to a temporary file in the same folder and are renamed into place, so a shard either
exists complete or not at all. Readers check keys, shapes and dtypes, and raise ``ShardError``
naming the file on anything corrupt or truncated.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

FORMAT = "vega-libero-clips/1"
PIXEL_CENTER = "pixel (row i, col j) has its centre at (u, v) = (j + 0.5, i + 0.5)"
CAMERA_CONVENTION = "OpenCV camera axes (x right, y down, z forward); T_wc = world-from-camera; metres"
ARRAYS = ("rgb", "depth", "K", "T_wc")


class ShardError(RuntimeError):
    """A shard (or the index) is missing, corrupt, truncated or inconsistent; the message names the file."""


def depth_to_u16(depth: np.ndarray, unit_m: float) -> np.ndarray:
    """Quantise metres to uint16 units of ``unit_m`` (round to nearest); out of range or invalid -> 0."""
    q = np.round(np.where(np.isfinite(depth) & (depth > 0), depth, 0.0) / unit_m)
    q[(q > np.iinfo(np.uint16).max) | (q < 0)] = 0
    return q.astype(np.uint16)


def depth_from_u16(q: np.ndarray, unit_m: float) -> np.ndarray:
    """uint16 depth units to float32 metres (0 stays 0 = invalid)."""
    return (q.astype(np.float32) * np.float32(unit_m)).astype(np.float32)


def atomic_write_bytes(path: Path, writer) -> None:
    """Create ``path`` atomically: ``writer(file)`` fills a temp file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj) -> None:
    """Write JSON atomically (temp file + rename)."""
    atomic_write_bytes(path, lambda f: f.write(json.dumps(obj, indent=1, sort_keys=True).encode()))


def check_plan_file(out: Path, cfg, **fields) -> None:
    """Pin ``out`` to one render config: write ``out/plan.json`` (format, ``fields``, the config and its
    digest) on the first run; on a later run (a resume) refuse another config with ``SystemExit``.
    ``cfg`` has ``to_dict()`` and ``digest()``."""
    plan_file = out / "plan.json"
    if plan_file.exists():
        old = json.loads(plan_file.read_text())
        if old.get("config_digest") != cfg.digest():
            raise SystemExit(f"{out} was rendered with another config (digest {old.get('config_digest')} != {cfg.digest()}); "
                             "use a new --out or the same config")
    else:
        atomic_write_json(plan_file, {"format": FORMAT, **fields, "config": cfg.to_dict(), "config_digest": cfg.digest()})


def write_shard(path: Path, clips: list[dict], metas: list[dict], depth_unit_m: float) -> None:
    """Write one shard atomically.

    Args:
        clips: per clip, ``{"rgb": [T,H,W,3] uint8, "depth": [T,H,W] float32 m, "K": [T,3,3], "T_wc": [T,4,4]}``.
        metas: per clip, a JSON-able dict (clip id, task, path kind, ...).
    """
    arrays: dict[str, np.ndarray] = {}
    for k, c in enumerate(clips):
        arrays[f"c{k:02d}_rgb"] = np.ascontiguousarray(c["rgb"], dtype=np.uint8)
        arrays[f"c{k:02d}_depth"] = depth_to_u16(c["depth"], depth_unit_m)
        arrays[f"c{k:02d}_K"] = np.asarray(c["K"], dtype=np.float64)
        arrays[f"c{k:02d}_T_wc"] = np.asarray(c["T_wc"], dtype=np.float64)
    header = {"format": FORMAT, "depth_unit_m": depth_unit_m, "pixel_center": PIXEL_CENTER,
              "camera": CAMERA_CONVENTION, "clips": metas}
    arrays["meta"] = np.array(json.dumps(header, sort_keys=True))
    atomic_write_bytes(Path(path), lambda f: np.savez_compressed(f, **arrays))


class ShardReader:
    """Validated read access to one shard. ``len(reader)`` clips; ``reader.clip(k)`` loads one."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._npz = np.load(self.path, allow_pickle=False)
            self.header = json.loads(str(self._npz["meta"][()]))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error, json.JSONDecodeError) as e:
            raise ShardError(f"corrupt or truncated shard {self.path}: {type(e).__name__}: {e}") from e
        if self.header.get("format") != FORMAT:
            raise ShardError(f"{self.path}: format {self.header.get('format')!r}, expected {FORMAT!r}")
        self.metas: list[dict] = self.header["clips"]
        self.depth_unit_m = float(self.header["depth_unit_m"])
        missing = [f"c{k:02d}_{a}" for k in range(len(self.metas)) for a in ARRAYS if f"c{k:02d}_{a}" not in self._npz.files]
        if missing:
            raise ShardError(f"{self.path}: missing arrays {missing[:4]}")

    def __len__(self) -> int:
        return len(self.metas)

    def clip(self, k: int, frames: np.ndarray | list[int] | None = None) -> dict:
        """Clip ``k`` (optionally only ``frames``): rgb uint8 [T,H,W,3], depth float32 m [T,H,W], K [T,3,3], T_wc [T,4,4]."""
        try:
            out = {a: self._npz[f"c{k:02d}_{a}"] for a in ARRAYS}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            raise ShardError(f"corrupt or truncated shard {self.path} (clip {k}): {type(e).__name__}: {e}") from e
        T, H, W = out["depth"].shape if out["depth"].ndim == 3 else (None, None, None)
        checks = [
            (out["rgb"].dtype == np.uint8 and out["rgb"].shape == (T, H, W, 3), "rgb"),
            (out["depth"].dtype == np.uint16 and T is not None, "depth"),
            (out["K"].shape == (T, 3, 3), "K"),
            (out["T_wc"].shape == (T, 4, 4), "T_wc"),
        ]
        bad = [name for ok, name in checks if not ok]
        if bad:
            raise ShardError(f"{self.path} clip {k}: bad shape/dtype of {bad}: " + ", ".join(f"{a} {out[a].dtype}{out[a].shape}" for a in ARRAYS))
        if frames is not None:
            out = {a: v[np.asarray(frames)] for a, v in out.items()}
        out["depth"] = depth_from_u16(out["depth"], self.depth_unit_m)
        return out

    def close(self) -> None:
        self._npz.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def shard_is_complete(path: Path) -> bool:
    """True if ``path`` exists and its zip directory and header read (cheap; no arrays decompressed)."""
    if not Path(path).is_file():
        return False
    try:
        with ShardReader(path):
            return True
    except ShardError:
        return False


def load_index(root: str | Path) -> dict:
    """The ``index.json`` of a rendered folder (raises ``ShardError`` naming it if missing or bad)."""
    p = Path(root) / "index.json"
    try:
        idx = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ShardError(f"cannot read index {p}: {e}") from e
    if idx.get("format") != FORMAT or "clips" not in idx:
        raise ShardError(f"{p}: not a {FORMAT} index")
    return idx
