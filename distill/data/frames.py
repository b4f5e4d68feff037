"""Per-frame training samples for the per-frame student: a decoded-frame cache and its dataset.

Decoding a compressed shard costs more than a training step of a small net, so the frames of a
split are decoded once into a cache folder of flat, memory-mapped arrays::

    DIR/rgb.u8      [N, H, W, 3] uint8 RGB (row 0 = top)
    DIR/depth.f16   [N, H, W] float16 z-depth in metres, 0 = invalid
    DIR/meta.json   format, N, H, W, source spec, split, per frame: K [3, 3], clip_id, frame_id;
                    counts of frames skipped for an empty depth map and of NaN/inf pixels masked

A cache is written into a temporary folder and renamed into place (complete or absent). A frame
whose depth map has no valid pixel is skipped and counted; NaN / inf / negative pixels become 0
(invalid) and are counted; :func:`open_frame_cache` checks sizes and names the file on a mismatch.

:class:`FrameDataset` reads the cache (memory-mapped, opened lazily per DataLoader worker) and
returns, per item, ``image [3, h, w]`` float32 in [0, 1], ``depth [h, w]`` float32 metres
(0 = invalid), ``valid [h, w]`` bool, ``K [3, 3]`` float32, ``focal_px`` float32 (fy of the image as
returned), ``crop [5]`` float32 ``(x0 / W, y0 / H, cw / W, ch / H, flip 0|1)`` in the cached
frame's normalised coordinates (to resample per-frame teacher maps onto the same view),
``clip_id``, ``frame_id``. :class:`FrameAugment` draws a random crop (a zoom: a
change of focal length), an optional horizontal flip and photometric changes; the intrinsics
follow the crop exactly (pixel (i, j) centre at (j + 0.5, i + 0.5); a crop of width ``cw`` at
``x0`` resized to ``w`` maps ``u -> (u - x0) w / cw``), and z-depth in metres is unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from distill.data.augment import PhotometricAugment

FORMAT = "vega-frame-cache/1"
RGB_FILE, DEPTH_FILE, META_FILE = "rgb.u8", "depth.f16", "meta.json"


class FrameCacheError(RuntimeError):
    """A frame cache is missing, incomplete or inconsistent; the message names the file."""


# ----------------------------------------------------------------------------- building the cache


def _frames_of_source(spec: str, split: str, samples_per_clip: int, num_frames: int, min_gap: int):
    """Yield ``(rgb [H, W, 3] uint8, depth [H, W] float32, K [3, 3], clip_id, frame_id)`` for every
    frame of ``split``: all frames of a rendered dataset, the sampled frames of any other source."""
    from distill.data.sources import SourceKind, open_clips, parse_data_spec

    d = parse_data_spec(spec)
    if d.kind is SourceKind.LIBERO_SIM:
        from distill.data.shards import ShardError, ShardReader, load_index

        rows = [r for r in load_index(d.path)["clips"] if r["split"] == split]
        if not rows:
            raise ShardError(f"{d.path / 'index.json'}: no clips in split {split!r}")
        readers: dict[str, ShardReader] = {}
        try:
            for r in rows:
                reader = readers.setdefault(r["shard"], ShardReader(d.path / r["shard"]))
                clip = reader.clip(int(r["slot"]))
                for t in range(clip["rgb"].shape[0]):
                    yield clip["rgb"][t], clip["depth"][t], clip["K"][t], r["clip_id"], t
        finally:
            for reader in readers.values():
                reader.close()
        return
    seen: set[tuple[str, int]] = set()
    for sample in open_clips(d, split=split, num_frames=num_frames, min_gap=min_gap, samples_per_clip=samples_per_clip):
        images = sample["images"].numpy() if torch.is_tensor(sample["images"]) else np.asarray(sample["images"])
        for s, fid in enumerate(np.asarray(sample["frame_ids"]).tolist()):
            key = (sample["clip_id"], int(fid))
            if key in seen:
                continue
            seen.add(key)
            rgb = np.clip(np.round(images[s].transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
            yield rgb, np.asarray(sample["depth"][s], np.float32), np.asarray(sample["K"][s], np.float64), key[0], key[1]


def build_frame_cache(spec: str, out_dir: str | os.PathLike, split: str = "train", samples_per_clip: int = 1,
                      num_frames: int = 4, min_gap: int = 5, max_frames: int | None = None,
                      overwrite: bool = False) -> Path:
    """Decode the frames of data spec ``spec`` (:mod:`distill.data.sources`) into a cache at ``out_dir``.

    Rendered datasets give every frame of every clip of ``split``; other sources give the frames
    of ``samples_per_clip`` samples of ``num_frames`` per clip. Returns the cache path.
    """
    frames = _frames_of_source(spec, split, samples_per_clip, num_frames, min_gap)
    return write_frame_cache(frames, out_dir, source=str(spec), split=split, max_frames=max_frames, overwrite=overwrite)


def write_frame_cache(frames_in: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, str, int]], out_dir: str | os.PathLike,
                      source: str, split: str = "train", max_frames: int | None = None, overwrite: bool = False) -> Path:
    """Write ``(rgb [H, W, 3] uint8, depth [H, W] metres, K [3, 3], clip_id, frame_id)`` frames as a cache
    at ``out_dir`` (atomically); empty depth maps are skipped and non-finite pixels masked, both counted."""
    spec = source
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists (pass overwrite=True / --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        rgb_f, depth_f = open(tmp / RGB_FILE, "wb"), open(tmp / DEPTH_FILE, "wb")
        frames: list[dict[str, Any]] = []
        hw = None
        skipped_empty = masked_pixels = 0
        with rgb_f, depth_f:
            for rgb, depth, K, clip_id, frame_id in frames_in:
                depth = np.asarray(depth, np.float32)
                if hw is None:
                    hw = rgb.shape[:2]
                if rgb.shape != (*hw, 3) or depth.shape != hw:
                    raise FrameCacheError(f"{spec}: clip {clip_id} frame {frame_id} is {rgb.shape[:2]} / depth {depth.shape}, "
                                          f"the cache's first frame is {hw}")
                bad = ~np.isfinite(depth) | (depth < 0)
                masked_pixels += int(bad.sum())
                depth = np.where(bad, 0.0, depth).astype(np.float32)
                if not (depth > 0).any():
                    skipped_empty += 1
                    continue
                rgb_f.write(np.ascontiguousarray(rgb, np.uint8).tobytes())
                depth_f.write(depth.astype(np.float16).tobytes())
                frames.append({"K": np.asarray(K, np.float64).tolist(), "clip_id": str(clip_id), "frame_id": int(frame_id)})
                if max_frames is not None and len(frames) >= max_frames:
                    break
        if not frames:
            raise FrameCacheError(f"{spec}: split {split!r} gave no frame with valid depth ({skipped_empty} empty skipped)")
        meta = {"format": FORMAT, "count": len(frames), "height": int(hw[0]), "width": int(hw[1]), "source": str(spec),
                "split": split, "skipped_empty_depth": skipped_empty, "masked_nonfinite_pixels": masked_pixels,
                "frames": frames}
        (tmp / META_FILE).write_text(json.dumps(meta))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


@dataclass(frozen=True)
class FrameCache:
    """An opened cache: memory-mapped ``rgb [N, H, W, 3]`` uint8, ``depth [N, H, W]`` float16, ``K [N, 3, 3]``."""

    path: Path
    rgb: np.ndarray
    depth: np.ndarray
    K: np.ndarray
    clip_ids: tuple[str, ...]
    frame_ids: np.ndarray
    meta: dict

    def __len__(self) -> int:
        return self.rgb.shape[0]


def open_frame_cache(path: str | os.PathLike) -> FrameCache:
    """Open a cache written by :func:`build_frame_cache`; raises :class:`FrameCacheError` naming the bad file."""
    path = Path(path)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise FrameCacheError(f"{path}: no {META_FILE} (build it: python -m distill.data.frames --data SPEC --out {path})")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise FrameCacheError(f"{meta_path}: not valid JSON ({e})") from e
    if meta.get("format") != FORMAT:
        raise FrameCacheError(f"{meta_path}: format {meta.get('format')!r}, this reader reads {FORMAT!r}")
    n, h, w = int(meta["count"]), int(meta["height"]), int(meta["width"])
    arrays = {}
    for name, dtype, shape in ((RGB_FILE, np.uint8, (n, h, w, 3)), (DEPTH_FILE, np.float16, (n, h, w))):
        f = path / name
        want = int(np.prod(shape)) * np.dtype(dtype).itemsize
        got = f.stat().st_size if f.is_file() else -1
        if got != want:
            raise FrameCacheError(f"{f}: {got} bytes, {META_FILE} promises {want} ({shape} {np.dtype(dtype).name}); rebuild the cache")
        arrays[name] = np.memmap(f, dtype=dtype, mode="r", shape=shape)
    frames = meta["frames"]
    if len(frames) != n:
        raise FrameCacheError(f"{meta_path}: {len(frames)} frame rows for count {n}")
    return FrameCache(path, arrays[RGB_FILE], arrays[DEPTH_FILE], np.array([f["K"] for f in frames], np.float64),
                      tuple(f["clip_id"] for f in frames), np.array([f["frame_id"] for f in frames], np.int64), meta)


# ----------------------------------------------------------------------------- augmentation and dataset


@dataclass(frozen=True)
class FrameAugment:
    """Random crop-and-resize (zoom: the focal length grows by 1 / scale), horizontal flip, photometric.

    ``scale`` bounds the crop side as a fraction of the frame side (1 = the whole frame); the crop
    keeps the output's aspect ratio, so fx and fy scale alike.
    """

    scale: tuple[float, float] = (0.6, 1.0)
    flip: bool = True
    photometric: PhotometricAugment | None = PhotometricAugment()


def crop_resize(rgb: np.ndarray, depth: np.ndarray, K: np.ndarray, box: tuple[int, int, int, int],
                out_hw: tuple[int, int], flip: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop ``box = (x0, y0, cw, ch)`` from ``rgb [H, W, 3]`` / ``depth [H, W]``, resize to ``out_hw`` and
    optionally mirror left-right; returns ``(rgb [h, w, 3] uint8, depth [h, w] float32, K' [3, 3])``.

    Depth is resized by nearest neighbour (no depth invented across edges) and keeps its metres;
    ``K'`` maps the same rays to the new pixels: ``f' = f s``, ``c' = (c - x0) s`` with ``s = w / cw``
    (and ``c_x' = w - c_x'`` when mirrored).
    """
    x0, y0, cw, ch = box
    h, w = out_hw
    crop = rgb[y0:y0 + ch, x0:x0 + cw]
    dcrop = np.asarray(depth[y0:y0 + ch, x0:x0 + cw], np.float32)
    interp = cv2.INTER_AREA if cw > w else cv2.INTER_LINEAR
    out_rgb = cv2.resize(np.ascontiguousarray(crop), (w, h), interpolation=interp) if (cw, ch) != (w, h) else np.array(crop)
    out_depth = cv2.resize(dcrop, (w, h), interpolation=cv2.INTER_NEAREST) if (cw, ch) != (w, h) else dcrop.copy()
    sx, sy = w / cw, h / ch
    K2 = np.array(K, np.float64)
    K2[0, 0], K2[1, 1] = K[0, 0] * sx, K[1, 1] * sy
    K2[0, 2], K2[1, 2] = (K[0, 2] - x0) * sx, (K[1, 2] - y0) * sy
    if flip:
        out_rgb, out_depth = out_rgb[:, ::-1].copy(), out_depth[:, ::-1].copy()
        K2[0, 2] = w - K2[0, 2]
    return out_rgb, out_depth, K2


class FrameDataset(Dataset):
    """Per-frame samples from a frame cache (see the module docstring for the item's keys).

    ``out_hw`` is the size the net sees (default: the cache's); with ``augment`` each item's crop,
    flip and photometric draw is a function of (seed, epoch, index); without it the whole frame is
    resized to ``out_hw``.
    """

    def __init__(self, cache_dir: str | os.PathLike, out_hw: tuple[int, int] | None = None,
                 augment: FrameAugment | None = None, seed: int = 0):
        self.cache_dir = Path(cache_dir)
        cache = open_frame_cache(self.cache_dir)  # validate now, reopen lazily in each worker
        self._n, self.hw = len(cache), (cache.rgb.shape[1], cache.rgb.shape[2])
        self.out_hw = tuple(out_hw) if out_hw is not None else self.hw
        self.augment, self.seed, self.epoch = augment, seed, 0
        self._cache: FrameCache | None = cache

    def __len__(self) -> int:
        return self._n

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def cache(self) -> FrameCache:
        if self._cache is None:
            self._cache = open_frame_cache(self.cache_dir)
        return self._cache

    def _box(self, rng: np.random.Generator) -> tuple[int, int, int, int]:
        H, W = self.hw
        h, w = self.out_hw
        fit = min(H / h, W / w)  # the largest crop of the output's aspect ratio
        s = rng.uniform(*self.augment.scale) if self.augment is not None else 1.0
        cw, ch = max(1, int(round(w * fit * s))), max(1, int(round(h * fit * s)))
        if self.augment is None:
            return (W - cw) // 2, (H - ch) // 2, cw, ch
        return int(rng.integers(0, W - cw + 1)), int(rng.integers(0, H - ch + 1)), cw, ch

    def __getitem__(self, idx: int) -> dict[str, Any]:
        if not 0 <= idx < self._n:
            raise IndexError(idx)
        c = self.cache
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        flip = bool(self.augment is not None and self.augment.flip and rng.random() < 0.5)
        box = self._box(rng)
        rgb, depth, K = crop_resize(c.rgb[idx], c.depth[idx], c.K[idx], box, self.out_hw, flip)
        image = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div_(255.0)
        if self.augment is not None and self.augment.photometric is not None:
            g = torch.Generator().manual_seed(int(rng.integers(2**62)))
            image = self.augment.photometric.images(image[None], g)[0]
        depth_t = torch.from_numpy(depth)
        return {"image": image, "depth": depth_t, "valid": depth_t > 0, "K": torch.from_numpy(K.astype(np.float32)),
                "focal_px": torch.tensor(K[1, 1], dtype=torch.float32),
                "crop": torch.tensor([box[0] / self.hw[1], box[1] / self.hw[0], box[2] / self.hw[1], box[3] / self.hw[0],
                                      float(flip)], dtype=torch.float32),
                "clip_id": c.clip_ids[idx],
                "frame_id": int(c.frame_ids[idx])}

    def __getstate__(self):  # memory maps do not cross process boundaries (DataLoader workers)
        state = self.__dict__.copy()
        state["_cache"] = None
        return state


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m distill.data.frames", description="Build a decoded-frame cache.")
    p.add_argument("--data", required=True, help="a data spec (distill.data.sources), e.g. data/libero_sim")
    p.add_argument("--out", required=True)
    p.add_argument("--split", default="train")
    p.add_argument("--samples-per-clip", type=int, default=1, help="for sources other than rendered datasets")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    path = build_frame_cache(args.data, args.out, args.split, args.samples_per_clip, max_frames=args.max_frames,
                             overwrite=args.overwrite)
    meta = open_frame_cache(path).meta
    print(f"frame cache {path}: {meta['count']} frames {meta['height']}x{meta['width']}, "
          f"{meta['skipped_empty_depth']} empty depth maps skipped, {meta['masked_nonfinite_pixels']} non-finite pixels masked")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
