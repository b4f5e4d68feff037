"""Renderer throughput: RGB-D frames/s of the LIBERO renderer and the procedural generator, side by side.

    python bench/bench_render.py --clips 16 --workers 1 2 --repeats 3

For each repeat, each worker count and each generator (interleaved, so the machine's other load
hits both alike), ``--clips`` train clips are rendered into a fresh temporary folder by the real
entry point (``distill.data.render.run`` / ``distill.data.procedural.render.run``), scene builds
included: LIBERO over ``--tasks`` tasks, procedural over ``clips / clips_per_scene`` scenes, as in
a full run. The table gives medians over repeats of frames/s (wall), worker CPU-seconds per frame
and MB on disk per 1,000 frames. Renderers run with ``MUJOCO_GL=egl`` (software Mesa here) and one
llvmpipe thread per worker process (``LP_NUM_THREADS=1``), one process per core.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
os.environ.setdefault("LP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from distill.data.config import load_config as load_libero  # noqa: E402
from distill.data.procedural.config import load_config as load_procedural  # noqa: E402


def _render(name: str, cfg, out: Path, workers: int) -> None:
    if name == "libero":
        from distill.data.render import run
    else:
        from distill.data.procedural.render import run
    run(cfg, out, workers=workers, progress=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--libero-config", default="config/data/libero_sim.yaml")
    ap.add_argument("--procedural-config", default="config/data/procedural.yaml")
    ap.add_argument("--generators", nargs="+", default=["libero", "procedural"], choices=["libero", "procedural"])
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--tasks", type=int, default=2, help="LIBERO tasks the clips spread over")
    ap.add_argument("--workers", type=int, nargs="+", default=[2])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    lib = load_libero(args.libero_config)
    cfgs = {
        "libero": dataclasses.replace(lib, clips={"train": args.clips}, max_tasks_per_split=args.tasks,
                                      clips_per_shard=max(1, -(-args.clips // (2 * args.tasks)))),
        "procedural": dataclasses.replace(load_procedural(args.procedural_config), clips={"train": args.clips}),
    }
    load0 = os.getloadavg()[0]
    results: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    for rep in range(args.repeats):
        for w in args.workers:
            for name in args.generators:
                cfg = cfgs[name]
                with tempfile.TemporaryDirectory() as d:
                    c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                    t0 = time.perf_counter()
                    _render(name, cfg, Path(d), w)
                    dt = time.perf_counter() - t0
                    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                    mb = sum(p.stat().st_size for p in Path(d).rglob("*.npz")) / 1e6
                frames = args.clips * cfg.frames
                cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
                results.setdefault((name, w), []).append((frames / dt, cpu / frames, mb * 1000 / frames))
                print(f"repeat {rep} {name:<10} workers={w}: {frames} frames in {dt:.1f} s ({frames / dt:.1f} frames/s)", flush=True)
    c = cfgs["procedural"]
    print(f"\n{c.width}x{c.height}, T={c.frames}, {args.clips} clips per run, median of {args.repeats} repeats; "
          f"load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after, on {os.cpu_count()} cores")
    print(f"{'generator':<11} {'workers':>7} {'frames/s':>9} {'CPU ms/frame':>13} {'MB/1k frames':>13} {'vs libero':>10}")
    for w in args.workers:
        base = np.median([r[0] for r in results.get(("libero", w), [(np.nan,)])])
        for name in args.generators:
            fps, cpu, mb = (float(np.median(x)) for x in zip(*results[(name, w)]))
            print(f"{name:<11} {w:>7} {fps:>9.1f} {cpu * 1e3:>13.1f} {mb:>13.0f} {fps / base:>9.2f}x")


if __name__ == "__main__":
    main()
