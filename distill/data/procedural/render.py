"""Render procedural MuJoCo scenes into multi-view clips (same shards + index as the LIBERO renderer).

    python -m distill.data.procedural.render --config config/data/procedural.yaml --out DIR --workers 2

Each scene (one compiled MJCF) gives ``clips_per_scene`` clips, written as one shard
``DIR/<split>/<scene_id>.npz``. Splits are by scene; ``heldout_family`` scenes use only held-out
objects and textures (and the held-out builtin texture), which train / val / test never contain.
Everything is a pure function of (config, scene id), so a killed run resumes with the same command:
finished shards are skipped (shards are written atomically). A scene that fails to compile or
renders empty is retried with derived seeds and then skipped; every failed try is counted and
logged with its seed in ``DIR/<split>/<scene_id>.skips.json`` and in the index, never a crash.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from distill.config import add_config_args, exit_on_config_error
from distill.data import render_pool
from distill.data.plan import clip_seed
from distill.data.procedural.config import SPLITS, ProceduralConfig, load_config
from distill.data.shards import (
    CAMERA_CONVENTION,
    FORMAT,
    PIXEL_CENTER,
    ShardReader,
    atomic_write_json,
    check_plan_file,
    shard_is_complete,
    write_shard,
)

HELDOUT_SPLIT = "heldout_family"
log = logging.getLogger("distill.data.procedural")


@dataclass(frozen=True)
class SceneShard:
    """One scene = one shard of ``n_clips`` clips."""

    split: str
    scene_id: str
    seed: int
    n_clips: int

    @property
    def relpath(self) -> str:
        return f"{self.split}/{self.scene_id}.npz"

    @property
    def family(self) -> str:
        return "heldout" if self.split == HELDOUT_SPLIT else "train"


def make_plan(cfg: ProceduralConfig) -> list[SceneShard]:
    """Every scene of the dataset, split by split (``clips_per_scene`` clips each, the last may hold fewer)."""
    out = []
    for split in SPLITS:
        n = int(cfg.clips.get(split, 0))
        for k in range(-(-n // cfg.clips_per_scene)):
            sid = f"{split}-s{k:05d}"
            out.append(SceneShard(split, sid, clip_seed(cfg.seed, sid), min(cfg.clips_per_scene, n - k * cfg.clips_per_scene)))
    return out


def _skips_path(out: Path, s: SceneShard) -> Path:
    return out / s.split / f"{s.scene_id}.skips.json"


def scene_is_done(out: Path, s: SceneShard) -> bool:
    """A scene is done when its shard is complete or it was skipped as a whole."""
    if shard_is_complete(out / s.relpath):
        return True
    p = _skips_path(out, s)
    return p.is_file() and json.loads(p.read_text()).get("scene_failed", False)




def _attempt_seed(seed: int, k: int) -> int:
    return seed if k == 0 else clip_seed(seed, f"retry-{k}")


def render_scene(out: str, cfg: ProceduralConfig, s: SceneShard) -> dict:
    """Render one scene's shard (unless done). Returns ``{"clips": n written, "skips": [...]}``; never raises on a bad scene."""
    import numpy as np

    from distill.data.offscreen import RenderError
    from distill.data.procedural.clips import choose_kind, render_clip
    from distill.data.procedural.mjcf import build_scene
    from distill.data.procedural.scene import ProceduralScene

    root = Path(out)
    if scene_is_done(root, s):
        return {"clips": 0, "skips": []}
    skips: list[dict] = []
    scene, scene_seed = None, s.seed
    for k in range(cfg.attempts):
        scene_seed = _attempt_seed(s.seed, k)
        try:
            rng = np.random.default_rng(scene_seed)
            spec, info = build_scene(cfg, s.family, rng)
            scene = ProceduralScene(spec, info, cfg.width, cfg.height, cfg.rgb_msaa, rng)
            break
        except Exception as e:  # noqa: BLE001 - compile errors are ValueError, GL / empty renders RuntimeError: all a counted skip
            skips.append({"scene_id": s.scene_id, "seed": scene_seed, "what": "scene", "reason": f"{type(e).__name__}: {e}"[:300]})
            log.warning("skip scene %s seed %d: %s", s.scene_id, scene_seed, skips[-1]["reason"])
    if scene is None:
        atomic_write_json(_skips_path(root, s), {"scene_failed": True, "skips": skips})
        return {"clips": 0, "skips": skips}
    clips, metas = [], []
    try:
        for c in range(s.n_clips):
            clip_id = f"{s.scene_id}-c{c:02d}"
            for k in range(cfg.attempts):
                seed = _attempt_seed(clip_seed(scene_seed, clip_id), k)
                kind = choose_kind(cfg, np.random.default_rng([seed, 1]), bool(scene.info.robots))
                try:
                    clip = render_clip(scene, kind, seed, cfg)
                except (RenderError, ValueError, ArithmeticError, np.linalg.LinAlgError) as e:
                    skips.append({"scene_id": s.scene_id, "clip_id": clip_id, "seed": seed, "what": "clip",
                                  "reason": f"{type(e).__name__}: {e}"[:300]})
                    log.warning("skip clip %s seed %d: %s", clip_id, seed, e)
                    continue
                clips.append({"rgb": clip.rgb, "depth": clip.depth, "K": clip.K, "T_wc": clip.T_wc})
                metas.append({"clip_id": clip_id, "split": s.split, "scene_id": s.scene_id, "family": s.family,
                              "scene_seed": scene_seed, "seed": seed, "suite": "procedural", **clip.meta, "scene": scene.info.to_meta()})
                render_pool.report(cfg.frames)
                break
    finally:
        scene.close()
    if skips:
        atomic_write_json(_skips_path(root, s), {"scene_failed": not clips, "skips": skips})
    if clips:
        write_shard(root / s.relpath, clips, metas, cfg.depth_unit_m)
    return {"clips": len(clips), "skips": skips}


def build_index(out: Path, cfg: ProceduralConfig, plan: list[SceneShard]) -> dict:
    """``index.json``: one row per clip (from the shard headers), the skips, the held-out family's assets."""
    from distill.data.procedural.assets import asset_pool, libero_objects, libero_textures

    rows, skips = [], []
    for s in plan:
        if _skips_path(out, s).is_file():
            skips += json.loads(_skips_path(out, s).read_text())["skips"]
        if not (out / s.relpath).is_file():
            continue
        with ShardReader(out / s.relpath) as r:
            for k, m in enumerate(r.metas):
                rows.append({**m, "shard": s.relpath, "slot": k, "frames": cfg.frames, "height": cfg.height, "width": cfg.width})
    return {
        "format": FORMAT,
        "generator": "procedural",
        "config": cfg.to_dict(),
        "config_digest": cfg.digest(),
        "depth": {"dtype": "uint16", "unit_m": cfg.depth_unit_m, "invalid": 0, "kind": "z-depth, non-MSAA pass"},
        "pixel_center": PIXEL_CENTER,
        "camera": CAMERA_CONVENTION,
        "world": "MuJoCo world frame of the procedural scene, z up, metres",
        "splits": {sp: sorted({r["scene_id"] for r in rows if r["split"] == sp}) for sp in SPLITS},
        "heldout_family": {
            "split": HELDOUT_SPLIT,
            "rule": f"objects and textures whose sha1 name bucket is below {cfg.heldout_percent} %, and builtin "
                    f"'{cfg.heldout_builtin}' textures; never in train / val / test",
            "objects": sorted(f"{o.source}/{o.name}" for o in libero_objects() if asset_pool(o.name, cfg.heldout_percent, "obj-") == "heldout"),
            "textures": sorted(t.name for t in libero_textures() if asset_pool(t.name, cfg.heldout_percent, "tex-") == "heldout")
                        + [f"builtin:{cfg.heldout_builtin}"],
        },
        "skipped": {"count": len(skips), "scenes_failed": sum(1 for x in skips if x["what"] == "scene"), "items": skips},
        "clips": rows,
    }


def run(cfg: ProceduralConfig, out: Path, workers: int = 1, progress: bool = True) -> dict:
    """Render every missing scene into ``out`` (resuming), then write and return the index."""
    from tqdm import tqdm

    out.mkdir(parents=True, exist_ok=True)
    check_plan_file(out, cfg, generator="procedural")
    plan = make_plan(cfg)
    todo = [s for s in plan if not scene_is_done(out, s)]
    total = sum(s.n_clips for s in plan) * cfg.frames
    bar = tqdm(total=total, initial=total - sum(s.n_clips for s in todo) * cfg.frames, unit="frame", unit_scale=False,
               desc="procedural", disable=not progress, smoothing=0.1, file=sys.stderr)
    if todo:
        render_pool.run_jobs(render_scene, [(str(out), cfg, sc) for sc in todo], workers, bar)  # a bug (not a bad scene) raises here
    bar.close()
    index = build_index(out, cfg, plan)
    atomic_write_json(out / "index.json", index)
    return index


@exit_on_config_error
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(ap, help="YAML procedural config (config/data/procedural*.yaml)")
    ap.add_argument("--out", required=True, help="output folder (resumed if it exists)")
    ap.add_argument("--workers", type=int, default=1, help="worker processes (one per core)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    cfg = load_config(args.config, args.overrides)
    t0 = time.perf_counter()
    index = run(cfg, Path(args.out), args.workers, progress=not args.no_progress)
    n = len(index["clips"])
    if index["skipped"]["count"] > 0.1 * max(n, 1):
        print(f"WARNING: {index['skipped']['count']} skipped tries for {n} clips: see 'skipped' in {args.out}/index.json", file=sys.stderr)
    print(f"{n} clips in {args.out} ({time.perf_counter() - t0:.1f} s this run), {index['skipped']['count']} skipped tries; "
          + ", ".join(f"{sp}: {sum(r['split'] == sp for r in index['clips'])}" for sp in SPLITS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
