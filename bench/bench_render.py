"""Renderer throughput: clips/s of ``distill.data.render`` with 1 and 2 workers on the same clips.

    python bench/bench_render.py --config config/data/libero_sim.yaml --clips 16

Renders ``--clips`` train clips (``--tasks`` tasks, so scene builds are amortised as in a full run)
into fresh temporary folders with each worker count, and prints clips/s, frames/s and the speed-up
of N workers over 1. The machine's other load changes the numbers; read ratios from one run.
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

from distill.data.config import load_config
from distill.data.render import run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="config/data/libero_sim.yaml")
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--tasks", type=int, default=2)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    base = load_config(args.config)
    cfg = dataclasses.replace(base, clips={"train": args.clips}, max_tasks_per_split=args.tasks,
                              clips_per_shard=max(1, -(-args.clips // (2 * args.tasks))))
    rows = []
    for w in args.workers:
        with tempfile.TemporaryDirectory() as d:
            c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            run(cfg, Path(d), workers=w, progress=False)
            dt = time.perf_counter() - t0
            c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
        rows.append((w, dt, cpu))
        print(f"workers={w}: {args.clips} clips in {dt:.1f} s wall, {cpu:.1f} s worker CPU", flush=True)
    print(f"\n{cfg.width}x{cfg.height}, T={cfg.frames}, rgb_msaa={cfg.rgb_msaa}, {args.clips} clips over {args.tasks} tasks")
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores (other load skews wall times)")
    print(f"{'workers':>7} {'clips/s':>8} {'frames/s':>9} {'speed-up':>9} {'CPU s/clip':>11}")
    for w, dt, cpu in rows:
        print(f"{w:>7} {args.clips / dt:>8.3f} {args.clips * cfg.frames / dt:>9.1f} {rows[0][1] / dt:>9.2f} {cpu / args.clips:>11.2f}")


if __name__ == "__main__":
    main()
