"""Benchmark: depth of non-square camera images, cropped or stretched to the model (``image_fit``).

The simulated LIBERO camera of the demo (config/sim_camera.yaml: path, fovy) renders each scene at
several sizes; every frame goes through ``vega_ros.image_fit.fit_to_model`` as in the perception
node, and the predicted depth is scored against the rendered truth on the pixels that get a depth
(crop: the centred window; stretch: all of them). Columns: AbsRel (metric, no scaling) and the
depth's scale (median of predicted / true), both the mean over the frames.

    .venv/bin/python bench/bench_image_fit.py [--clips demo,libero_90:43,libero_90:55] [--frames 10]
        [--sizes 224x224,320x240,426x240] [--model vega-frame-v2] [--json docs/bench/image_fit.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from vega_ros.image_fit import IMAGE_FITS, fit_to_model, to_image  # noqa: E402


def scores(pred: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """(AbsRel, median predicted / true) over pixels with a prediction and true depth in (0.05, 10) m."""
    ok = (pred > 0) & (true > 0.05) & (true < 10.0)
    return float(np.mean(np.abs(pred[ok] - true[ok]) / true[ok])), float(np.median(pred[ok] / true[ok]))


def bench_clip(name: str, size: tuple[int, int], frames: int, engine) -> list[dict]:
    from bench_odometry import demo_camera

    from vega_ros.engine.stream import preprocess

    W, H = size
    scene, path, p = demo_camera(name, size)
    mh, mw = engine.input_hw
    per_fit: dict[str, list[tuple[float, float]]] = {fit: [] for fit in IMAGE_FITS}
    try:
        for k in range(frames):
            f = scene.render(path.T_wc(6 * k / p["rate_hz"]))  # every 6th frame of the demo stream
            for fit in IMAGE_FITS:
                rgb, K_model, window = fit_to_model(f.rgb, f.K, (mh, mw), fit)
                depth = engine.run_frame(preprocess(rgb, mh, mw), np.array([K_model[1, 1]], np.float32)).depth[0]
                per_fit[fit].append(scores(to_image(depth, window, (W, H)), f.depth))
    finally:
        scene.close()
    return [{"clip": name, "size": f"{W}x{H}", "fit": fit, "abs_rel": float(np.mean([a for a, _ in v])),
             "depth_scale": float(np.mean([s for _, s in v])), "frames": frames} for fit, v in per_fit.items()]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", default="demo,libero_90:43,libero_90:55", help="demo or <suite>:<task>, comma-separated")
    ap.add_argument("--sizes", default="224x224,320x240,426x240", help="camera sizes WxH, comma-separated")
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--model", default="vega-frame-v2", help="a name under models/ or a directory")
    ap.add_argument("--json", default="", help="also write the rows here")
    args = ap.parse_args(argv)
    from vega_ros.engine.selection import create_engine

    model_dir = args.model if os.path.isdir(args.model) else os.path.join(ROOT, "models", args.model)
    engine, _ = create_engine(model_dir, "onnxruntime-cpu", intra_op_threads=1, inter_op_threads=1)
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",") if s]
    rows = []
    for name in [c for c in args.clips.split(",") if c]:
        for size in sizes:
            rows += bench_clip(name, size, args.frames, engine)
            print(f"[{name} {size[0]}x{size[1]}] " + ", ".join(f"{r['fit']} {r['abs_rel']:.3f} / {r['depth_scale']:.3f}"
                                                               for r in rows[-len(IMAGE_FITS):]), flush=True)
    print("\n| clip | camera | " + " | ".join(f"{fit}: AbsRel / scale" for fit in IMAGE_FITS) + " |")
    print("|---|---|" + "---|" * len(IMAGE_FITS))
    for i in range(0, len(rows), len(IMAGE_FITS)):
        group = rows[i:i + len(IMAGE_FITS)]
        print(f"| {group[0]['clip']} | {group[0]['size']} | " + " | ".join(f"{r['abs_rel']:.3f} / {r['depth_scale']:.3f}" for r in group) + " |")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump({"command": "bench/bench_image_fit.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                       "model": args.model, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
