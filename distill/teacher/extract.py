"""Extract WAN DIFT features for a dataset into a feature cache (resumable).

    python -m distill.teacher.extract --checkpoint /models/Wan2.1-T2V-1.3B-Diffusers \\
        --data DIR --out CACHE [--config config/teacher/wan2.1-1.3b.yaml] [--part 0 --num-parts 4]

Clips already in CACHE/manifest.json are skipped, so re-running after a kill continues where it stopped.
Several GPUs: one process per GPU, each with --part i --num-parts N and its own --out (CACHE/part-i);
read them together with `distill.teacher.cache.FeatureCaches([...])`.

Data sources (`--source`):
    libero  a folder written by `python -m distill.data.render` (index.json + .npz shards); --split filters
    npy     DIR/*.npy videos ([T, H, W, 3] uint8 or [T, 3, H, W] float in [0, 1]), clip id = file stem
Other readers plug in through `SOURCES`: a name → callable(DIR, split) giving an iterable of
(clip_id, video [T, 3, H, W] float32 in [0, 1]) (with __len__ when it can, for the progress bar).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from distill.config import add_config_args, exit_on_config_error, load_config
from distill.teacher.cache import FeatureCacheWriter
from distill.teacher.wan import WanDiftConfig, WanDiftTeacher

Video = torch.Tensor  # [T, 3, H, W] float32 in [0, 1]


def to_video(array: np.ndarray, name: str = "video") -> Video:
    """[T, H, W, 3] uint8 or [T, 3, H, W] float in [0, 1] → [T, 3, H, W] float32."""
    if array.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D video, got shape {array.shape}")
    if array.dtype == np.uint8:
        if array.shape[-1] != 3:
            raise ValueError(f"{name}: uint8 videos must be [T, H, W, 3], got {array.shape}")
        return torch.from_numpy(np.array(array)).permute(0, 3, 1, 2).float() / 255.0
    if array.shape[1] != 3 or not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{name}: float videos must be [T, 3, H, W] in [0, 1], got {array.shape} {array.dtype}")
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


class NpyVideos:
    """DIR/*.npy, one video per file, clip id = file stem, in name order (no splits)."""

    def __init__(self, data_dir: Path, split: str | None = None):
        if split is not None:
            raise ValueError("--split applies to --source libero; npy folders have no splits")
        self.files = sorted(Path(data_dir).glob("*.npy"))
        if not self.files:
            raise FileNotFoundError(f"no *.npy videos in {data_dir}")

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[tuple[str, Video]]:
        for path in self.files:
            yield path.stem, to_video(np.load(path, mmap_mode="r"), str(path))


class LiberoVideos:
    """The RGB videos of a `distill.data.render` folder (all splits, or one), clip id = the index's clip_id."""

    def __init__(self, data_dir: Path, split: str | None = None):
        from distill.data.shards import load_index

        self.root = Path(data_dir)
        rows = load_index(self.root)["clips"]
        self.rows = sorted((r for r in rows if split is None or r["split"] == split),
                           key=lambda r: (r["shard"], int(r["slot"])))
        if not self.rows:
            raise FileNotFoundError(f"{self.root / 'index.json'}: no clips" + (f" in split {split!r}" if split else ""))

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[tuple[str, Video]]:
        from distill.data.shards import ShardReader

        reader, name = None, None
        for row in self.rows:
            if row["shard"] != name:
                if reader is not None:
                    reader.close()
                reader, name = ShardReader(self.root / row["shard"]), row["shard"]
            rgb = reader.clip(int(row["slot"]))["rgb"]  # [T, H, W, 3] uint8
            yield row["clip_id"], to_video(rgb, f"{self.root / row['shard']} clip {row['slot']}")
        if reader is not None:
            reader.close()


SOURCES: dict[str, Callable[[Path, str | None], Iterable[tuple[str, Video]]]] = {
    "libero": LiberoVideos,
    "npy": NpyVideos,
}


def extract(teacher: WanDiftTeacher, clips: Iterable[tuple[str, Video]], out: str | Path, *, part: int = 0,
            num_parts: int = 1, limit: int | None = None, shard_bytes: int = 512 << 20,
            total: int | None = None, progress: bool = True) -> dict:
    """Run the teacher over (clip_id, video) pairs into the cache at `out`; returns counts and timing.

    Clip i goes to this process when i % num_parts == part. Clips already cached are skipped.
    """
    from tqdm import tqdm

    done = skipped = 0
    seconds = 0.0
    with FeatureCacheWriter(out, teacher.describe(), shard_bytes=shard_bytes) as cache:
        bar = tqdm(total=total, unit="clip", disable=not progress, dynamic_ncols=True)
        for i, (clip_id, video) in enumerate(clips):
            if limit is not None and done >= limit:
                break
            if i % num_parts != part:
                continue
            bar.update(1)
            if clip_id in cache:
                skipped += 1
                continue
            start = time.perf_counter()
            features = teacher.latent_features(video)
            seconds += time.perf_counter() - start
            cache.add(clip_id, features, num_frames=video.shape[0])
            done += 1
            bar.set_postfix(new=done, skipped=skipped, s_per_clip=f"{seconds / done:.2f}")
        bar.close()
        cached = len(cache)
    return {"extracted": done, "skipped": skipped, "cached": cached,
            "seconds_per_clip": seconds / done if done else None}


@exit_on_config_error
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distill.teacher.extract", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True, help="local WAN 2.1 checkpoint root (diffusers layout)")
    parser.add_argument("--data", required=True, type=Path, help="dataset directory")
    parser.add_argument("--out", required=True, type=Path, help="feature cache directory (created or resumed)")
    add_config_args(parser, required=False, help="config/teacher/*.yaml with WanDiftConfig fields")
    parser.add_argument("--source", default="libero", choices=sorted(SOURCES), help="how to read --data")
    parser.add_argument("--split", help="only this split (libero source), e.g. train")
    parser.add_argument("--model-id")
    parser.add_argument("--block", type=int)
    parser.add_argument("--timestep", type=int)
    parser.add_argument("--resolution", type=int, nargs=2, metavar=("H", "W"))
    parser.add_argument("--chunk-frames", type=int)
    parser.add_argument("--max-blocks", type=int)
    parser.add_argument("--device")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--part", type=int, default=0)
    parser.add_argument("--num-parts", type=int, default=1)
    parser.add_argument("--limit", type=int, help="stop after this many new clips")
    parser.add_argument("--shard-mb", type=int, default=512, help="target shard size in MiB")
    args = parser.parse_args(argv)
    if not 0 <= args.part < args.num_parts:
        parser.error(f"--part must be in 0..{args.num_parts - 1}")

    overrides = {"checkpoint": args.checkpoint, "model_id": args.model_id, "block": args.block, "timestep": args.timestep,
                     "resolution": args.resolution, "chunk_frames": args.chunk_frames, "max_blocks": args.max_blocks,
                     "device": args.device, "dtype": args.dtype}
    if args.config:
        config = WanDiftConfig.from_yaml(args.config, args.overrides, **overrides)
    else:
        config = load_config(WanDiftConfig, None, args.overrides, values={k: v for k, v in overrides.items() if v is not None})
    teacher = WanDiftTeacher(config)
    print(f"teacher: {teacher.describe()} on {teacher.device}", file=sys.stderr)
    clips = SOURCES[args.source](args.data, args.split)
    total = len(clips) if hasattr(clips, "__len__") else None
    stats = extract(teacher, clips, args.out, part=args.part, num_parts=args.num_parts, limit=args.limit,
                    shard_bytes=args.shard_mb << 20, total=total)
    print(f"cache {args.out}: {stats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
