"""The frozen-encoder token cache: every clip of a split encoded once into fp16 safetensors shards.

``OUT/cache/<split>/shard_*.safetensors`` + ``manifest.json`` (encoder, grid, sizes, source); probe
steps read tokens from here and never pay the encoder again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from distill.data.sample import points_in_reference
from distill.data.sources import open_clips
from distill.probe.config import ProbeRunConfig
from vega_ros.artifact import sha256_file


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


def _refuse_other_weights(manifest: dict, spec: str, cache_dir: Path) -> None:
    """A ``student:…encoder.onnx`` SPEC names a file whose weights can change under the same name
    (a re-export); its cached features must come from the file as it is now (sha256), else stop."""
    from distill.encoders import onnx_file_of_spec

    cached = (manifest.get("encoder") or {}).get("sha256")
    onnx = onnx_file_of_spec(spec)
    if cached is None or onnx is None or manifest.get("spec") != spec:
        return
    now = sha256_file(str(onnx))
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
            clips = open_clips(data, split, run.num_frames, run.min_gap, per_clip, run.seed)
            manifests[split] = cache_features(encoder, clips, cdir, spec, run.cache_shard, limit,
                                              desc=f"cache {split}", source=source)
    return manifests


