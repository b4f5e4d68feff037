"""Render LIBERO scenes into multi-view clips with exact depth and poses.

    python -m distill.data.render --config config/data/libero_sim.yaml --out DIR --workers 2

One worker process per core (MuJoCo's software renderer is single-threaded). A worker takes all
shards of one task, builds that scene once, and writes each shard atomically. The run resumes:
restarted with the same arguments it skips finished shards, and since every clip is a pure
function of (config, clip id), the result is the same dataset. ``index.json`` is written at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from distill.config import add_config_args, exit_on_config_error
from distill.data import render_pool
from distill.data.config import RenderConfig, load_config
from distill.data.plan import ShardSpec, clip_seed, make_plan
from distill.data.shards import (
    CAMERA_CONVENTION,
    FORMAT,
    PIXEL_CENTER,
    ShardError,
    ShardReader,
    atomic_write_json,
    check_plan_file,
    shard_is_complete,
    write_shard,
)


def render_task_shards(out: str, cfg: RenderConfig, shards: list[ShardSpec]) -> list[str]:
    """Render the missing shards of one task (all ``shards`` share the task). Returns the paths written."""
    from distill.data.libero_scene import LiberoScene
    from distill.data.scenes import load_init_states

    todo = [s for s in shards if not shard_is_complete(Path(out) / s.relpath)]
    if not todo:
        return []
    task = todo[0].task
    layout_seed = clip_seed(cfg.seed, f"layout-{task.suite}-t{task.task_index:02d}")
    scene = LiberoScene(task, cfg.width, cfg.height, cfg.rgb_msaa, layout_seed)
    init_states = load_init_states(task)
    written = []
    try:
        for shard in todo:
            clips, metas = [], []
            for spec in shard.clips:
                clip = _render_with_retries(scene, init_states, spec, cfg)
                clips.append({"rgb": clip.rgb, "depth": clip.depth, "K": clip.K, "T_wc": clip.T_wc})
                metas.append({"clip_id": spec.clip_id, "split": spec.split, "suite": task.suite, "task_index": task.task_index,
                              "task_name": task.name, "scene_id": task.scene_id, "seed": spec.seed, "layout_seed": layout_seed,
                              **clip.meta})
                render_pool.report(1)
            write_shard(Path(out) / shard.relpath, clips, metas, cfg.depth_unit_m)
            written.append(shard.relpath)
    finally:
        scene.close()
    return written


def _render_with_retries(scene, init_states, spec, cfg: RenderConfig, attempts: int = 3):
    """Render a clip; on ``RenderError`` (e.g. an empty view) retry with seeds derived from the clip's seed.

    Retries stay deterministic: attempt k uses ``clip_seed(spec.seed, f"retry-{k}")``; the index records it.
    """
    from distill.data.clips import render_clip
    from distill.data.offscreen import RenderError

    for k in range(attempts):
        try_spec = spec if k == 0 else dataclasses.replace(spec, seed=clip_seed(spec.seed, f"retry-{k}"))
        try:
            clip = render_clip(scene, init_states, try_spec, cfg)
        except RenderError as e:
            if k == attempts - 1:
                raise RenderError(f"{spec.clip_id} ({scene.task.name}): {e}") from e
            continue
        if k:
            clip.meta["retry"] = k
        return clip
    raise AssertionError("unreachable")


def _group_by_task(plan: list[ShardSpec]) -> list[list[ShardSpec]]:
    groups: dict[tuple[str, int, str], list[ShardSpec]] = {}
    for s in plan:
        groups.setdefault((s.task.suite, s.task.task_index, s.clips[0].split), []).append(s)
    return list(groups.values())


def build_index(out: Path, cfg: RenderConfig, plan: list[ShardSpec]) -> dict:
    """Assemble ``index.json`` from the shards' headers (one row per clip)."""
    rows = []
    for shard in plan:
        path = out / shard.relpath
        with ShardReader(path) as r:
            if [m["clip_id"] for m in r.metas] != [c.clip_id for c in shard.clips]:
                raise ShardError(f"{path}: clips {[m['clip_id'] for m in r.metas]} do not match the plan")
            for k, m in enumerate(r.metas):
                rows.append({**m, "shard": shard.relpath, "slot": k, "frames": cfg.frames, "height": cfg.height, "width": cfg.width})
    return {
        "format": FORMAT,
        "config": cfg.to_dict(),
        "config_digest": cfg.digest(),
        "depth": {"dtype": "uint16", "unit_m": cfg.depth_unit_m, "invalid": 0, "kind": "z-depth, non-MSAA pass"},
        "pixel_center": PIXEL_CENTER,
        "camera": CAMERA_CONVENTION,
        "world": "MuJoCo world frame of the LIBERO scene, z up, metres",
        "splits": {s: sorted({r["scene_id"] for r in rows if r["split"] == s}) for s in ("train", "val", "test")},
        "clips": rows,
    }


def run(cfg: RenderConfig, out: Path, workers: int = 1, progress: bool = True) -> dict:
    """Render everything the config asks for into ``out`` (resuming), then write and return the index."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    check_plan_file(out, cfg)
    plan = make_plan(cfg)
    total = sum(len(s.clips) for s in plan)
    done = sum(len(s.clips) for s in plan if shard_is_complete(out / s.relpath))
    groups = sorted(_group_by_task(plan), key=lambda g: -sum(len(s.clips) for s in g))
    bar = tqdm(total=total, initial=done, unit="clip", desc="render", disable=not progress, smoothing=0.05, file=sys.stderr)
    if done < total:
        render_pool.run_jobs(render_task_shards, [(str(out), cfg, g) for g in groups], workers, bar)
    bar.close()
    index = build_index(out, cfg, plan)
    atomic_write_json(out / "index.json", index)
    return index


@exit_on_config_error
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(ap, help="YAML render config (config/data/*.yaml)")
    ap.add_argument("--out", required=True, help="output folder (resumed if it exists)")
    ap.add_argument("--workers", type=int, default=1, help="worker processes (one per core)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    t0 = time.perf_counter()
    index = run(cfg, Path(args.out), args.workers, progress=not args.no_progress)
    n = len(index["clips"])
    print(f"{n} clips in {args.out} ({time.perf_counter() - t0:.1f} s this run); "
          + ", ".join(f"{s}: {sum(r['split'] == s for r in index['clips'])}" for s in ("train", "val", "test")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
