"""Benchmark: the perception node on a simulated 224x224 stream with ONNX Runtime (CPU), over real DDS.

Paths side by side in one run: the format version 1 artifact (encoder + clip heads per frame, the
previous student) and the format version 2 per-frame path (``frame.onnx``; by default the shipped
student, ``--model floor`` the random-init full-size floor model, ``python -m distill.export --random-v2``) as fp32, fp16-stored weights and
int8 (ONNX Runtime dynamic quantization, :mod:`model_variants`), with each variant's depth change
against fp32 (AbsRel between their depth maps on the same frames).

For each path the node runs as its own process (``python -m vega_ros.perception_node``); this
process publishes pre-rendered frames with fresh stamps and subscribes to ``depth/image``,
``points`` and ``pose`` (image in -> depth, cloud, pose out) and ``/diagnostics``. Two phases:

  throughput  frames offered at ``--fast-hz`` (faster than the node can go): end-to-end FPS, drops
  latency     frames offered at ``--slow-hz`` (the node keeps up): latency image stamp -> cloud,
              model ms and node overhead ms (depth stage minus model: resize, cloud, messages),
              pose stage ms and latency image stamp -> pose (the pose stage runs beside the depth stage)

Prints a markdown table and writes ``docs/bench/perception.json`` (``fps_end_to_end``,
``model_ms``, ``node_overhead_ms``, ``latency_p95_ms`` of the v2 fp32 path, every path under
``paths``). Medians and percentiles only; nothing here fails on time.

    .venv/bin/python bench/bench_perception.py [--duration 8] [--threads 2] [--model DIR] [--variants fp32,fp16w,int8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(101 + os.getpid() % 100))

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped
from model_variants import write_variant  # noqa: E402  (bench/, on the path above)
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from vega_ros import conversions
from vega_ros.artifact import default_model_dir
from vega_ros.diagnostics import diagnostic_values
from vega_ros.engine import create_engine
from vega_ros.engine.stream import preprocess
from vega_ros.perception_node import diagnostic_status_name
from vega_ros.sim_camera_node import CameraPath, LiberoScene, SyntheticScene  # noqa: E402

SIZE = 224


def render_frames(source: str, n: int):
    scene = SyntheticScene(SIZE, SIZE, 50.0) if source == "synthetic" else LiberoScene("libero_spatial", 0, "galleryview", SIZE, SIZE, 50.0, 0)
    path = CameraPath(scene.target, scene.start_azimuth, period_s=n / 10.0)
    frames = [scene.render(path.T_wc(i / 10.0)) for i in range(n)]
    if hasattr(scene, "close"):
        scene.close()
    return frames


def _rate_hz(times: np.ndarray) -> float:
    return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 2 else 0.0


def run_phase(node, executor, pubs, frames, rate_hz: float, duration: float, clouds: list, poses: list, diags: list, name: str):
    clouds.clear()
    poses.clear()
    diags.clear()
    period = 1.0 / rate_hz
    t0 = time.monotonic()
    i = 0
    next_t = t0
    while time.monotonic() - t0 < duration:
        now = time.monotonic()
        if now >= next_t:
            f = frames[i % len(frames)]
            header = conversions.make_header(node.get_clock().now().to_msg(), "camera_optical")
            pubs[1].publish(conversions.intrinsics_to_camera_info(conversions.CameraIntrinsics(K=f.K, width=SIZE, height=SIZE), header))
            pubs[0].publish(conversions.numpy_to_image(f.rgb, "rgb8", header))
            i += 1
            next_t += period
            if next_t < now - period:
                next_t = now  # don't burst to catch up
        executor.spin_once(timeout_sec=max(0.0, min(0.005, next_t - time.monotonic())))
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
    recv = np.array([t for t, _ in clouds])
    lat = np.array([(t_wall - conversions.stamp_to_seconds(m.header.stamp)) * 1e3 for t_wall, m in clouds]) if clouds else np.array([np.nan])
    pose_lat = np.array([(t_wall - conversions.stamp_to_seconds(m.header.stamp)) * 1e3 for t_wall, m in poses]) if poses else np.array([np.nan])
    diag = next((v for m in reversed(diags) if (v := diagnostic_values(m, diagnostic_status_name(name)))), {})
    return {"offered": i, "received": len(clouds), "fps": _rate_hz(recv), "lat_recv_p50": float(np.percentile(lat, 50)),
            "lat_recv_p95": float(np.percentile(lat, 95)), "pose_fps": _rate_hz(np.array([t for t, _ in poses])),
            "pose_lat_recv_p95": float(np.percentile(pose_lat, 95)), "diag": diag}


def node_phases(model_dir: str, threads: int, frames, args) -> dict:
    """Start the node on ``model_dir``, run the throughput and latency phases, stop it; the two phases' numbers."""
    ns, name = f"/bench_{uuid.uuid4().hex[:6]}", "perception_bench"
    node_cmd = [sys.executable, "-m", "vega_ros.perception_node", "--ros-args", "-r", f"__node:={name}", "-r", f"__ns:={ns}",
                "-p", f"model_dir:={model_dir}", "-p", f"intra_op_threads:={threads}", "-p", "backend:=onnxruntime-cpu",
                "-p", "diagnostics_period_s:=0.5", "-p", "latency_window:=100000"]
    proc = subprocess.Popen(node_cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    node = rclpy.create_node(f"bench_camera_{uuid.uuid4().hex[:6]}")
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    pubs = (node.create_publisher(Image, f"{ns}/image", qos_profile_sensor_data),
            node.create_publisher(CameraInfo, f"{ns}/camera_info", qos_profile_sensor_data))
    clouds: list = []
    poses: list = []
    diags: list = []
    node.create_subscription(PointCloud2, f"{ns}/points", lambda m: clouds.append((time.time(), m)), 10)
    node.create_subscription(Image, f"{ns}/depth/image", lambda m: None, 10)
    node.create_subscription(PoseStamped, f"{ns}/pose", lambda m: poses.append((time.time(), m)), 10)
    node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
    try:
        deadline = time.monotonic() + 60
        while pubs[0].get_subscription_count() == 0 and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.1)
        run_phase(node, ex, pubs, frames, 5.0, 2.0, clouds, poses, diags, name)  # warm-up
        fast = run_phase(node, ex, pubs, frames, args.fast_hz, args.duration, clouds, poses, diags, name)
        slow = run_phase(node, ex, pubs, frames, args.slow_hz, args.duration, clouds, poses, diags, name)
    finally:
        ex.remove_node(node)
        node.destroy_node()
        proc.send_signal(2)
        proc.wait(timeout=20)
    return {"fast": fast, "slow": slow, "exit_code": proc.returncode}


def depth_change(model_dir: str, reference_dir: str, frames, threads: int) -> tuple[float, float]:
    """(AbsRel of this model's depth against the reference model's on ``frames``, median model ms here without ROS)."""
    ref, _ = create_engine(reference_dir, "onnxruntime-cpu", intra_op_threads=threads)
    eng, _ = create_engine(model_dir, "onnxruntime-cpu", intra_op_threads=threads)
    errs, times = [], []
    for f in frames[:12]:
        x = preprocess(f.rgb, SIZE, SIZE)
        K = f.K
        if eng.per_frame:
            t0 = time.perf_counter()
            d = eng.run_frame(x, [K[1, 1]]).depth[0]
            times.append((time.perf_counter() - t0) * 1e3)
            d_ref = ref.run_frame(x, [K[1, 1]]).depth[0]
        else:
            return float("nan"), float("nan")
        valid = (d_ref > 0) & np.isfinite(d) & np.isfinite(d_ref)
        errs.append(float(np.mean(np.abs(d[valid] - d_ref[valid]) / d_ref[valid])))
    return float(np.mean(errs)), float(np.median(times[2:]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=8.0, help="seconds per phase")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads in the node")
    ap.add_argument("--fast-hz", type=float, default=60.0)
    ap.add_argument("--slow-hz", type=float, default=10.0)
    ap.add_argument("--source", default="synthetic", choices=("synthetic", "libero"))
    ap.add_argument("--model", default=None,
                    help="format version 2 artifact (default: the shipped default; 'floor': export the random-init floor model)")
    ap.add_argument("--v1-model", default=os.path.join(ROOT, "models", "vega-sim-vit-ti"),
                    help="the format version 1 artifact beside it (the previous student); 'none' leaves it out")
    ap.add_argument("--variants", default="fp32,fp16w,int8", help="comma-separated weight variants of the v2 model")
    ap.add_argument("--json", default=os.path.join(ROOT, "docs", "bench", "perception.json"))
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="bench_perception_")
    v2 = args.model or default_model_dir()
    if v2 == "floor":
        v2 = os.path.join(work, "floor")
        subprocess.run([sys.executable, "-m", "distill.export", "--random-v2", "--out", v2], cwd=ROOT, check=True,
                       env={**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = {f"v2-{k}": write_variant(v2, os.path.join(work, k), k) for k in args.variants.split(",")}
    runs = {"v1": args.v1_model, **runs} if args.v1_model != "none" else runs
    frames = render_frames(args.source, 40)
    rclpy.init()
    rows = {}
    try:
        for label, model_dir in runs.items():
            r = node_phases(model_dir, args.threads, frames, args)
            absrel, ms_here = depth_change(model_dir, runs.get("v2-fp32", v2), frames, args.threads) if label != "v1" else (float("nan"), float("nan"))
            rows[label] = (r, absrel, ms_here)
    finally:
        rclpy.try_shutdown()

    def g(d, k):
        try:
            return float(d["diag"][k])
        except (KeyError, ValueError):
            return float("nan")

    print(f"perception node, {SIZE}x{SIZE} {args.source} stream over DDS, ONNX Runtime CPU, {args.threads} intra-op threads, "
          f"{os.cpu_count()} CPUs (shared), {args.duration:.0f} s per phase; image in -> depth/image, points, pose out")
    print("| path | FPS end to end | model ms p50 | node overhead ms p50 (% of model) | latency p50 / p95 ms | dropped busy / offered | "
          "pose FPS | pose ms p50 / p95 | pose latency p95 ms | AbsRel vs v2-fp32 | exit |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    table = {}
    for label, (r, absrel, ms_here) in rows.items():
        fast, slow = r["fast"], r["slow"]
        model, over = g(slow, "model_ms.p50"), g(slow, "overhead_ms.p50")
        lat50, lat95 = g(slow, "latency_ms.p50"), g(slow, "latency_ms.p95")
        table[label] = {"fps_end_to_end": fast["fps"], "model_ms": model, "node_overhead_ms": over, "latency_p50_ms": lat50,
                        "latency_p95_ms": lat95, "latency_recv_p95_ms": slow["lat_recv_p95"], "dropped_busy": g(fast, "dropped_busy"),
                        "offered": fast["offered"], "received": fast["received"], "absrel_vs_fp32": absrel, "model_ms_without_ros": ms_here,
                        "overhead_cpu_ms": g(slow, "overhead_cpu_ms.p50"), "model_cpu_ms": g(slow, "model_cpu_ms.p50"),
                        "pose_fps": fast["pose_fps"], "pose_ms_p50": g(slow, "pose_ms.p50"), "pose_ms_p95": g(slow, "pose_ms.p95"),
                        "pose_latency_p95_ms": g(slow, "pose_latency_ms.p95"), "dropped_pose_busy": g(fast, "dropped_pose_busy"),
                        "exit_code": r["exit_code"]}
        print(f"| {label} | {fast['fps']:.1f} | {model:.1f} | {over:.1f} ({100 * over / model:.0f} %) | {lat50:.0f} / {lat95:.0f} | "
              f"{g(fast, 'dropped_busy'):.0f} / {fast['offered']} | {fast['pose_fps']:.1f} | {g(slow, 'pose_ms.p50'):.1f} / "
              f"{g(slow, 'pose_ms.p95'):.1f} | {g(slow, 'pose_latency_ms.p95'):.0f} | {absrel:.5f} | {r['exit_code']} |")
    print("goals: >= 20 FPS, overhead <= 20 % of model time, latency p95 <= 100 ms (image stamp -> cloud published, node side)")
    primary = "v2-fp32" if "v2-fp32" in table else next(iter(table))
    out = {**{k: table[primary][k] for k in ("fps_end_to_end", "model_ms", "node_overhead_ms", "latency_p95_ms")},
           "primary": primary, "paths": table, "size": SIZE, "threads": args.threads, "cpus": os.cpu_count(), "source": args.source,
           "duration_s": args.duration, "command": "python bench/bench_perception.py " + " ".join(sys.argv[1:])}
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {args.json}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
