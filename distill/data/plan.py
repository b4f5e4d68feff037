"""The deterministic plan of a render: which clips, of which task, in which shard file.

Clips are distributed over the tasks of each split as evenly as possible; each task's clips are cut
into shards of at most ``clips_per_shard`` (one shard never mixes tasks, so a worker builds a
scene once per task). Path kinds are drawn from ``path_weights`` with a per-clip seed, so the plan
(and every clip) is a pure function of the config.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from distill.data.camera_paths import PathKind
from distill.data.config import RenderConfig
from distill.data.scenes import SPLITS, LiberoTask, all_tasks, split_of_scene


@dataclass(frozen=True)
class ClipSpec:
    """One clip to render."""

    clip_id: str
    split: str
    kind: PathKind
    seed: int  # the clip's own seed (derived from the config seed and the clip id)


@dataclass(frozen=True)
class ShardSpec:
    """One shard file: clips of one task."""

    relpath: str  # e.g. "train/libero_90_t07_s001.npz"
    task: LiberoTask
    clips: tuple[ClipSpec, ...]


def clip_seed(root_seed: int, clip_id: str) -> int:
    """A 63-bit seed from the config's seed and the clip id (stable across runs and machines)."""
    return int(np.random.SeedSequence([root_seed, zlib.crc32(clip_id.encode())]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def tasks_by_split(cfg: RenderConfig) -> dict[str, list[LiberoTask]]:
    """Tasks of each split (scene-disjoint by construction), optionally thinned to ``max_tasks_per_split``."""
    out: dict[str, list[LiberoTask]] = {s: [] for s in SPLITS}
    for t in all_tasks(cfg.suites):
        out[split_of_scene(t.scene_id, list(cfg.val_scenes), list(cfg.test_scenes))].append(t)
    if cfg.max_tasks_per_split is not None:
        for s, ts in out.items():
            if len(ts) > cfg.max_tasks_per_split:
                keep = np.linspace(0, len(ts) - 1, cfg.max_tasks_per_split).round().astype(int)
                out[s] = [ts[i] for i in keep]
    return out


def _kind(cfg: RenderConfig, seed: int) -> PathKind:
    names = sorted(cfg.path_weights)
    w = np.array([cfg.path_weights[n] for n in names], dtype=np.float64)
    rng = np.random.default_rng([seed, 1])
    return PathKind(names[int(rng.choice(len(names), p=w / w.sum()))])


def make_plan(cfg: RenderConfig) -> list[ShardSpec]:
    """All shards of the dataset, split by split, task by task."""
    shards: list[ShardSpec] = []
    for split, tasks in tasks_by_split(cfg).items():
        n_clips = int(cfg.clips.get(split, 0))
        if n_clips == 0:
            continue
        if not tasks:
            raise ValueError(f"split {split!r} asks for {n_clips} clips but has no scenes")
        per_task = [n_clips // len(tasks) + (k < n_clips % len(tasks)) for k in range(len(tasks))]
        for task, n in zip(tasks, per_task):
            if n == 0:
                continue
            n_shards = -(-n // cfg.clips_per_shard)
            sizes = [n // n_shards + (k < n % n_shards) for k in range(n_shards)]
            start = 0
            for s, size in enumerate(sizes):
                clips = []
                for c in range(start, start + size):
                    cid = f"{split}-{task.suite}-t{task.task_index:02d}-c{c:04d}"
                    seed = clip_seed(cfg.seed, cid)
                    clips.append(ClipSpec(cid, split, _kind(cfg, seed), seed))
                start += size
                rel = f"{split}/{task.suite}_t{task.task_index:02d}_s{s:03d}.npz"
                shards.append(ShardSpec(rel, task, tuple(clips)))
    return shards
