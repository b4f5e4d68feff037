"""Benchmark: per-frame model time of every artifact in the catalog, ONNX Runtime CPU, no ROS.

- student: one frame through the perception stream as the node runs it (encoder on the frame, then
  the heads over the keyframe + buffered frames + this one: ``[1, S, N, C]``), preprocessing included;
- policy: one prediction (``OnnxPolicy.predict_chunk``: both cameras through the encoder named in
  its card, if any, then ``policy.onnx``); it runs once per executed chunk, not every control step.

Inputs are seeded random images (the graphs' cost does not depend on the content). Prints the
median and p90 of ``--repeats`` rounds after ``--warmup`` (a round runs every model once, so load
from other processes falls on all alike) and each median's ratio to the default student's, measured
in the same run. These are the numbers in ``models/catalog.json`` (``per_frame_ms``).

    .venv/bin/python bench/bench_models.py [--threads 2] [--repeats 10] [--models NAME ...]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from vega_ros.artifact import DEFAULT_MODEL
from vega_ros.catalog import CatalogEntry, Kind, load_catalog


def student_runner(model_dir: str, threads: int, rng: np.random.Generator) -> tuple[Callable[[], float], Callable[[], None]]:
    """(one frame -> ms, close) for a student artifact."""
    from vega_ros.engine import create_engine
    from vega_ros.engine.stream import StreamingPerception

    engine, _ = create_engine(model_dir, "onnxruntime-cpu", intra_op_threads=threads)
    stream = StreamingPerception(engine)
    h, w = stream.height, stream.width
    K = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], np.float64)
    frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(4)]
    frame = itertools.cycle(frames)
    return lambda: stream.process(next(frame), K).model_ms, engine.close


def policy_runner(model_dir: str, threads: int, rng: np.random.Generator) -> tuple[Callable[[], float], Callable[[], None]]:
    """(one prediction -> ms, close) for a policy artifact."""
    from vega_ros.policy_runtime import OnnxPolicy, PolicyInputs

    policy = OnnxPolicy(model_dir, threads=threads)
    policy.reset(sorted(policy.embeddings)[0])
    size = policy.card.image_size
    proprio = np.array([0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.02, -0.02], np.float32)  # pos, quat (x, y, z, w), gripper

    def once() -> float:
        obs = PolicyInputs(agentview=rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
                           wrist=rng.integers(0, 256, (size, size, 3), dtype=np.uint8), proprio=proprio)
        t0 = time.perf_counter()
        policy.predict_chunk(obs)
        return (time.perf_counter() - t0) * 1e3

    return once, lambda: None


def measure(entries: list[CatalogEntry], root: str, threads: int, repeats: int, warmup: int) -> dict[str, list[float]]:
    """ms per run of each entry, in rounds (one run of every model per round), so load from other processes
    falls on all of them alike; warm-up rounds dropped."""
    rng = np.random.default_rng(0)
    runners = {e.name: (student_runner if e.kind is Kind.STUDENT else policy_runner)(os.path.join(root, e.name), threads, rng)
               for e in entries}
    times: dict[str, list[float]] = {name: [] for name in runners}
    try:
        for _ in range(warmup + repeats):
            for name, (once, _close) in runners.items():
                times[name].append(once())
    finally:
        for _once, close in runners.values():
            close()
    return {name: t[warmup:] for name, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--models", nargs="*", default=None, help="catalog names (default: all)")
    args = ap.parse_args(argv)
    catalog = load_catalog()
    entries = [catalog.entry(n) for n in args.models] if args.models else list(catalog.models)
    results = measure(entries, catalog.root, args.threads, args.repeats, args.warmup)
    base = float(np.median(results[DEFAULT_MODEL])) if DEFAULT_MODEL in results else None
    print(f"ONNX Runtime CPU, {args.threads} intra-op threads, {args.repeats} rounds after {args.warmup} warm-up, {os.cpu_count()} cores")
    print(f"{'model':<28} {'kind':<8} {'ms p50':>8} {'ms p90':>8} {'vs ' + DEFAULT_MODEL:>22}")
    for e in entries:
        t = np.asarray(results[e.name])
        ratio = f"{np.median(t) / base:.2f}x" if base else "-"
        print(f"{e.name:<28} {e.kind.value:<8} {np.median(t):8.1f} {np.percentile(t, 90):8.1f} {ratio:>22}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
