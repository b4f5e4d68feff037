"""Benchmark: visual odometry (vega_ros.odometry) against the learned pose head and ORB + RANSAC.

Clips are rendered here with the simulated camera of the demo (``vega_ros.sim_camera_node``'s
scenes and camera path, the parameters of config/sim_camera.yaml): ``synthetic`` (the analytic
scene), ``demo`` (the LIBERO scene of ``make demo``: libero_spatial task 0) and held-out LIBERO
scenes (``libero_90:43`` is KITCHEN_SCENE9 and ``libero_90:55`` LIVING_ROOM_SCENE3, both in the
test split of config/data/libero_sim.yaml, so no shipped model trained on them). The depth of
the LIBERO scenes is robosuite's MSAA depth (1-3 mm median error, shared/DESIGN.md §5).

Rows per clip, all at the model's input size (224 x 224):

  vo/true-depth           VO on the rendered depth
  vo/<model>              VO on the model's predicted metric depth (no scale fix)
  vo/<model>+prior        the same, the model's pose head as prior (PnP seed and fallback)
  pose-head/<model>       today's learned pose head (vega_ros.engine.stream.StreamingPerception)
  orb+ransac              ORB + essential matrix (distill.probe.baseline) on the AUC pairs (no ATE:
                          it gives directions only)

Columns: ATE RMSE with no alignment at all (both trajectories in their first camera's frame) as %
of the true path length; relative-pose AUC@30 over all ordered pairs of 24 evenly spaced frames
(the demo summary's protocol); keyframes, losses and VO time per frame (median ms); for the VO on
a model's depth, that depth's scale (median predicted / true depth, 10-90 % over the frames). Goals of
issue 34: ATE <= 3 %, AUC@30 >= 0.6 and above ORB + RANSAC.

    .venv/bin/python bench/bench_odometry.py [--clips synthetic,demo,libero_90:43] [--frames 120]
        [--models vega-frame-v2,vega-sim-vit-ti] [--json docs/bench/odometry.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402

from vega_ros import geometry  # noqa: E402
from vega_ros.odometry import OdometrySettings, VisualOdometry  # noqa: E402
from vega_ros.odometry.metrics import ate_percent, pair_indices, path_length_m, relative_pose_auc30  # noqa: E402


def demo_camera(name: str, size: tuple[int, int] | None = None):
    """``(scene, path, params)``: the clip's scene (``synthetic``, ``demo`` or ``<suite>:<task>``) seen by the demo's
    simulated camera (config/sim_camera.yaml), at ``size = (W, H)`` or the config's size; close the scene after use."""
    import yaml

    from vega_ros.sim_camera_node import CameraPath, LiberoScene, SyntheticScene

    with open(os.path.join(ROOT, "config", "sim_camera.yaml")) as fh:
        p = yaml.safe_load(fh)["sim_camera"]["ros__parameters"]
    W, H = size or (p["width"], p["height"])
    if name == "synthetic":
        scene = SyntheticScene(W, H, p["fov_y_deg"])
    else:
        suite, task = ("libero_spatial", 0) if name == "demo" else (name.split(":")[0], int(name.split(":")[1]))
        scene = LiberoScene(suite, task, p["camera_name"], W, H, p["fov_y_deg"], p["seed"])
    path = CameraPath(scene.target, scene.start_azimuth, p["path"], p["path_radius_m"], p["path_height_m"],
                      p["path_period_s"], p["path_arc_deg"])
    return scene, path, p


def render_clip(name: str, frames: int) -> dict:
    """``{rgb [S, H, W, 3] uint8, depth [S, H, W], K [3, 3], T_wc [S, 4, 4], rate_hz}`` along the demo's camera path."""
    scene, path, p = demo_camera(name)
    out = [scene.render(path.T_wc(k / p["rate_hz"])) for k in range(frames)]
    if hasattr(scene, "close"):
        scene.close()
    return {"rgb": np.stack([f.rgb for f in out]), "depth": np.stack([f.depth for f in out]), "K": out[0].K,
            "T_wc": np.stack([f.T_wc for f in out]), "rate_hz": p["rate_hz"]}


def run_model(model: str, clip: dict) -> dict:
    """Predicted depth ``[S, h, w]``, K at the model size and the pose head's ``T_odom_cam [S, 4, 4]``
    (None for a format version 2 artifact without heads). ``model``: a name under models/ or a directory."""
    from vega_ros.engine.frame_stream import FrameStream
    from vega_ros.engine.selection import create_engine
    from vega_ros.engine.stream import StreamingPerception

    model_dir = model if os.path.isdir(model) else os.path.join(ROOT, "models", model)
    engine, _ = create_engine(model_dir, "onnxruntime-cpu", intra_op_threads=1, inter_op_threads=1)
    stream = FrameStream(engine) if engine.per_frame else StreamingPerception(engine)
    has_pose = not engine.per_frame
    h, w = stream.height, stream.width
    src_h, src_w = clip["rgb"].shape[1:3]
    K = geometry.resize_intrinsics(clip["K"], (src_w, src_h), (w, h))
    depth, poses, ms = [], [], []
    for rgb in clip["rgb"]:
        t0 = time.perf_counter()
        r = stream.process(rgb, K)
        ms.append((time.perf_counter() - t0) * 1e3)
        depth.append(r.depth)
        poses.append(r.T_odom_cam)
    if engine.per_frame:
        stream.close()
    engine.close()
    return {"depth": np.stack(depth), "K": K, "T_wc": np.stack(poses) if has_pose else None, "model_ms": float(np.median(ms))}


def run_vo(gray: np.ndarray, depth: np.ndarray, K: np.ndarray, rate_hz: float, head_T_wc: np.ndarray | None = None) -> dict:
    """VO over a clip; with ``head_T_wc`` the pose head's current-from-keyframe pose is the prior."""
    vo = VisualOdometry(OdometrySettings())
    poses, ms = [], []
    kf_frame = 0
    for k in range(len(gray)):
        prior = None
        if head_T_wc is not None and vo.keyframe_T_wc is not None:
            prior = geometry.relative_pose(head_T_wc[k], head_T_wc[kf_frame])
        t0 = time.perf_counter()
        r = vo.track(gray[k], depth[k].astype(np.float32), K, k / rate_hz, prior)
        ms.append((time.perf_counter() - t0) * 1e3)
        if r.keyframe:
            kf_frame = k
        poses.append(r.T_wc)
    c = vo.counters
    return {"T_wc": np.stack(poses), "vo_ms": float(np.median(ms)), "keyframes": c.keyframes, "losses": c.losses,
            "prior_fallbacks": c.prior_fallbacks}


def orb_auc(rgb: np.ndarray, K: np.ndarray, T_wc: np.ndarray) -> float:
    from distill.probe.baseline import orb_pose_errors

    idx = pair_indices(len(T_wc))
    r_err, t_err = orb_pose_errors(rgb[idx].transpose(0, 3, 1, 2), np.repeat(K[None], len(idx), 0), T_wc[idx])
    return geometry.pose_auc(r_err, t_err, 30)


def depth_scale_ratio(pred: np.ndarray, true: np.ndarray) -> dict:
    """Median over frames of each frame's median predicted / true depth (1: metric scale right) and
    its 10-90 % spread: ``pred, true [S, h, w]`` metres, pixels with a finite prediction and true
    depth in (0.05, 10) m. With no scale alignment, VO's translation inherits this ratio, so an ATE
    far above the true-depth row with a ratio far from 1 is the depth's scale, not the tracker."""
    ok = np.isfinite(pred) & (true > 0.05) & (true < 10.0)
    r = np.array([np.median(pred[k][ok[k]] / true[k][ok[k]]) for k in range(len(true)) if ok[k].any()])
    return {"depth_scale": float(np.median(r)), "depth_scale_p10_p90": [float(v) for v in np.percentile(r, [10, 90])]}


def score(T_est: np.ndarray, T_true: np.ndarray) -> dict:
    return {"ate_pct": ate_percent(T_est, T_true), "auc30": relative_pose_auc30(T_est, T_true)}


def bench_clip(name: str, frames: int, models: list[str]) -> list[dict]:
    t0 = time.perf_counter()
    clip = render_clip(name, frames)
    print(f"[{name}] rendered {frames} frames in {time.perf_counter() - t0:.1f} s; "
          f"path {path_length_m(clip['T_wc']):.3f} m", flush=True)
    T_true = clip["T_wc"]
    rows = []
    outputs = {m: run_model(m, clip) for m in models}
    size = outputs[models[0]]["depth"].shape[1:] if models else clip["depth"].shape[1:]
    h, w = size
    src_h, src_w = clip["rgb"].shape[1:3]
    K = geometry.resize_intrinsics(clip["K"], (src_w, src_h), (w, h))
    rgb = np.stack([cv2.resize(x, (w, h), interpolation=cv2.INTER_AREA) if (src_h, src_w) != (h, w) else x for x in clip["rgb"]])
    gray = np.stack([cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in rgb])
    true_depth = np.stack([cv2.resize(d, (w, h), interpolation=cv2.INTER_NEAREST) for d in clip["depth"]])
    r = run_vo(gray, true_depth, K, clip["rate_hz"])
    rows.append({"clip": name, "method": "vo/true-depth", **score(r["T_wc"], T_true), **r})
    for model, out in outputs.items():
        m = os.path.basename(model.rstrip("/"))
        r = run_vo(gray, out["depth"], K, clip["rate_hz"])
        rows.append({"clip": name, "method": f"vo/{m}", **score(r["T_wc"], T_true), **r,
                     **depth_scale_ratio(out["depth"], true_depth)})
        if out["T_wc"] is None:  # a per-frame artifact without keyframe heads: no learned pose to compare
            continue
        r = run_vo(gray, out["depth"], K, clip["rate_hz"], head_T_wc=out["T_wc"])
        rows.append({"clip": name, "method": f"vo/{m}+prior", **score(r["T_wc"], T_true), **r})
        rows.append({"clip": name, "method": f"pose-head/{m}", **score(out["T_wc"], T_true), "model_ms": out["model_ms"]})
    rows.append({"clip": name, "method": "orb+ransac", "ate_pct": None, "auc30": orb_auc(rgb, K, T_true)})
    for row in rows:
        row.pop("T_wc", None)
        row["path_m"] = path_length_m(T_true)
        row["frames"] = frames
    return rows


def print_table(rows: list[dict]) -> None:
    def f(v, fmt):
        return "-" if v is None else fmt.format(v)

    print("\n| clip | method | ATE % of path | AUC@30 | keyframes | losses | VO ms/frame (median) | depth scale (p10-p90) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        spread = r.get("depth_scale_p10_p90")
        scale = "-" if spread is None else f"{r['depth_scale']:.3f} ({spread[0]:.3f}-{spread[1]:.3f})"
        print(f"| {r['clip']} | {r['method']} | {f(r['ate_pct'], '{:.2f}')} | {f(r['auc30'], '{:.3f}')} | "
              f"{f(r.get('keyframes'), '{}')} | {f(r.get('losses'), '{}')} | {f(r.get('vo_ms'), '{:.1f}')} | {scale} |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", default="synthetic,demo,libero_90:43", help="comma-separated: synthetic, demo, <suite>:<task>")
    ap.add_argument("--frames", type=int, default=120, help="frames per clip (at the demo's 10 Hz)")
    ap.add_argument("--models", default="vega-frame-v2,vega-sim-vit-ti", help="comma-separated model names under models/")
    ap.add_argument("--json", default="", help="also write the rows here (e.g. docs/bench/odometry.json)")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    models = [m for m in args.models.split(",") if m]
    rows = []
    for name in [c for c in args.clips.split(",") if c]:
        rows += bench_clip(name, args.frames, models)
    print_table(rows)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump({"command": "bench/bench_odometry.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                       "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
