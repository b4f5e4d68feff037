"""Benchmark: the perception node on a simulated 224x224 stream with ONNX Runtime (CPU), over real DDS.

The node runs as its own process (``python -m vega_ros.perception_node``); this process publishes
pre-rendered frames (synthetic scene by default, ``--source libero`` for LIBERO frames) with fresh
stamps and listens to ``points`` and ``/diagnostics``. Two phases:

  throughput  frames offered at ``--fast-hz`` (faster than the node can go): end-to-end FPS
  latency     frames offered at ``--slow-hz`` (the node keeps up): latency image stamp -> cloud

Printed: end-to-end FPS, latency p50/p95 (node-side stamp -> cloud publish, and stamp -> cloud
received here), model time inside the node and the same engine's time without ROS measured in
this run, and the ROS overhead (node processing time minus model time) as a fraction of model
time. Medians and ratios only; nothing here fails on time.

    .venv/bin/python bench/bench_perception.py [--duration 10] [--threads 1] [--source synthetic|libero]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(101 + os.getpid() % 100))

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image, PointCloud2

from vega_ros import conversions
from vega_ros.artifact import default_model_dir, load_artifact
from vega_ros.diagnostics import diagnostic_values
from vega_ros.engine import create_engine
from vega_ros.engine.stream import StreamingPerception
from vega_ros.perception_node import diagnostic_status_name
from vega_ros.sim_camera_node import CameraPath, LiberoScene, SyntheticScene

SIZE = 224


def render_frames(source: str, n: int):
    scene = SyntheticScene(SIZE, SIZE, 50.0) if source == "synthetic" else LiberoScene("libero_spatial", 0, "galleryview", SIZE, SIZE, 50.0, 0)
    path = CameraPath(scene.target, scene.start_azimuth, period_s=n / 10.0)
    frames = [scene.render(path.T_wc(i / 10.0)) for i in range(n)]
    if hasattr(scene, "close"):
        scene.close()
    return frames


def model_only_ms(frames, threads: int, repeats: int) -> float:
    engine, _ = create_engine(load_artifact(default_model_dir()), "onnxruntime-cpu", intra_op_threads=threads)
    stream = StreamingPerception(engine)
    times = []
    for i in range(repeats):
        f = frames[i % len(frames)]
        times.append(stream.process(f.rgb, f.K).model_ms)
    return float(np.median(times[3:]))


def run_phase(node, executor, pubs, frames, rate_hz: float, duration: float, clouds: list, diags: list, name: str):
    clouds.clear()
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
    fps = (len(recv) - 1) / (recv[-1] - recv[0]) if len(recv) > 2 else 0.0
    diag = next((v for m in reversed(diags) if (v := diagnostic_values(m, diagnostic_status_name(name)))), {})
    return {"offered": i, "received": len(clouds), "fps": fps, "lat_recv_p50": float(np.percentile(lat, 50)),
            "lat_recv_p95": float(np.percentile(lat, 95)), "diag": diag}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    ap.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads in the node")
    ap.add_argument("--fast-hz", type=float, default=60.0)
    ap.add_argument("--slow-hz", type=float, default=10.0)
    ap.add_argument("--source", default="synthetic", choices=("synthetic", "libero"))
    args = ap.parse_args()

    frames = render_frames(args.source, 40)
    ns, name = f"/bench_{uuid.uuid4().hex[:6]}", "perception_bench"
    node_cmd = [sys.executable, "-m", "vega_ros.perception_node", "--ros-args", "-r", f"__node:={name}", "-r", f"__ns:={ns}",
                "-p", f"intra_op_threads:={args.threads}", "-p", "diagnostics_period_s:=0.5", "-p", "latency_window:=100000"]
    proc = subprocess.Popen(node_cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    rclpy.init()
    node = rclpy.create_node("bench_camera")
    ex = SingleThreadedExecutor()
    ex.add_node(node)
    pubs = (node.create_publisher(Image, f"{ns}/image", qos_profile_sensor_data),
            node.create_publisher(CameraInfo, f"{ns}/camera_info", qos_profile_sensor_data))
    clouds: list = []
    diags: list = []
    node.create_subscription(PointCloud2, f"{ns}/points", lambda m: clouds.append((time.time(), m)), 10)
    node.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
    try:
        deadline = time.monotonic() + 60
        while pubs[0].get_subscription_count() == 0 and time.monotonic() < deadline:
            ex.spin_once(timeout_sec=0.1)
        run_phase(node, ex, pubs, frames, 5.0, 2.0, clouds, diags, name)  # warm-up
        fast = run_phase(node, ex, pubs, frames, args.fast_hz, args.duration, clouds, diags, name)
        slow = run_phase(node, ex, pubs, frames, args.slow_hz, args.duration, clouds, diags, name)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        proc.send_signal(2)
        proc.wait(timeout=20)
    baseline = model_only_ms(frames, args.threads, 60)

    def g(d, k):
        try:
            return float(d["diag"][k])
        except (KeyError, ValueError):
            return float("nan")

    model_p50 = g(slow, "model_ms.p50")
    process_p50 = g(slow, "process_ms.p50")
    overhead = process_p50 - model_p50
    print(f"perception node, {SIZE}x{SIZE} {args.source} stream, ONNX Runtime CPU ({args.threads} intra-op thread(s)), "
          f"{os.cpu_count()} CPUs (shared), {args.duration:.0f} s per phase")
    print(f"  throughput phase ({args.fast_hz:.0f} Hz offered): end-to-end {fast['fps']:.1f} FPS "
          f"({fast['received']} clouds from {fast['offered']} images; node dropped_busy {g(fast, 'dropped_busy'):.0f})")
    print(f"  latency phase ({args.slow_hz:.0f} Hz offered): {slow['fps']:.1f} FPS")
    print(f"    image stamp -> cloud publish (node)   p50 {g(slow, 'latency_ms.p50'):7.1f} ms   p95 {g(slow, 'latency_ms.p95'):7.1f} ms")
    print(f"    image stamp -> cloud received (here)  p50 {slow['lat_recv_p50']:7.1f} ms   p95 {slow['lat_recv_p95']:7.1f} ms")
    print(f"    model time in the node (enc + heads)  p50 {model_p50:7.1f} ms   (encoder {g(slow, 'encoder_ms.p50'):.1f}, heads {g(slow, 'heads_ms.p50'):.1f})")
    print(f"    same engine without ROS, this run     p50 {baseline:7.1f} ms")
    print(f"    node processing per frame             p50 {process_p50:7.1f} ms   (queue wait p50 {g(slow, 'queue_ms.p50'):.1f} ms)")
    print(f"  ROS overhead (decode, resize, cloud, publish) = {overhead:.1f} ms = {100 * overhead / model_p50:.0f} % of model time (goal <= 20 %)")
    m_cpu, o_cpu = g(slow, "model_cpu_ms.p50"), g(slow, "overhead_cpu_ms.p50")
    print(f"  same, in CPU time of the node's worker thread (other processes' load excluded): model {m_cpu:.1f} ms, "
          f"overhead {o_cpu:.1f} ms = {100 * o_cpu / m_cpu:.0f} % of model time")
    print(f"  full path overhead (stamp -> cloud received minus model) = {100 * (slow['lat_recv_p50'] - model_p50) / model_p50:.0f} % of model time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
