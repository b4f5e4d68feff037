"""The main job: simulated camera -> perception node over real DDS, recorded and scored.

``vega-ros demo`` starts the simulated camera (``sim_camera_node``, a LIBERO scene by default)
and the perception node as two separate processes that talk over DDS, records every topic of
both to ``demo_out/bag/recording.mcap`` (+ rosbag2 ``metadata.yaml``), stops after
``--duration`` seconds, then reads the bag back and writes to ``demo_out/``:

  summary.json, summary.md   rates, latency (node-side and recorder-side), model time, rejected
                             frames, depth AbsRel / delta<1.25 and pose errors against the sim's
                             ground truth (with the shipped random-init model they are bad; the
                             summary says so)
  depth_*.png                image | predicted depth | ground-truth depth for a few frames
  cloud.png                  the predicted and the ground-truth point clouds of one frame
  trajectory.png             the published pose against the true one (top view + side view); the
                             summary adds ATE without alignment (% of path) and relative-pose AUC@30
  logs/*.log                 each node's output

Topics: camera ``/camera/{image_raw, camera_info, ground_truth/depth, ground_truth/pose}``;
perception ``/{depth/image, depth/camera_info, depth/confidence, points, pose, odometry, path, features}``, ``/diagnostics``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from vega_ros import conversions, geometry
from vega_ros.odometry import metrics as odometry_metrics
from vega_ros.trajectory_plot import plot_trajectories

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAMERA_NS = "/camera"


def config_path(name: str) -> str:
    """``config/<name>`` from the source tree, else from the installed share directory."""
    local = os.path.join(ROOT, "config", name)
    for candidate in (local, os.path.join(sys.prefix, "share", "vega_ros", "config", name)):
        if os.path.isfile(candidate):
            return candidate
    try:
        from ament_index_python.packages import get_package_share_directory

        return os.path.join(get_package_share_directory("vega_ros"), "config", name)
    except Exception:  # noqa: BLE001
        return local


@dataclass
class NodeProcess:
    """A node started as ``python -m <module> --ros-args ...`` in its own process."""

    module: str
    name: str
    params_file: str | None = None
    params: dict = field(default_factory=dict)
    remaps: dict = field(default_factory=dict)
    log_path: str | None = None
    proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", self.module, "--ros-args", "-r", f"__node:={self.name}"]
        if self.params_file:
            cmd += ["--params-file", self.params_file]
        for k, v in self.params.items():
            if isinstance(v, bool):
                v = "true" if v else "false"
            cmd += ["-p", f"{k}:={v}"]
        for k, v in self.remaps.items():
            cmd += ["-r", f"{k}:={v}"]
        return cmd

    def start(self, env: dict | None = None) -> NodeProcess:
        out = open(self.log_path, "w") if self.log_path else None  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(self.command(), cwd=ROOT, stdout=out or subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGINT (a clean rclpy shutdown), then SIGTERM / SIGKILL if it lingers."""
        stop_all([self], timeout)
        return None if self.proc is None else self.proc.returncode


def stop_all(procs: list[NodeProcess], timeout: float = 10.0) -> None:
    """Stop the node processes together: SIGINT to all, one shared ``timeout`` (s) for their clean
    shutdown, then SIGTERM (5 s) and SIGKILL for any that linger. Together, so that a slow node does
    not add its wait to the others' (a loaded machine can take seconds per node)."""
    running = [p.proc for p in procs if p.proc is not None and p.proc.poll() is None]
    for proc in running:
        proc.send_signal(signal.SIGINT)
    for signal_next, wait_s in ((subprocess.Popen.terminate, timeout), (subprocess.Popen.kill, 5.0)):
        deadline = time.monotonic() + wait_s
        for proc in running:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        running = [proc for proc in running if proc.poll() is None]
        for proc in running:
            signal_next(proc)
    for proc in running:
        proc.wait()


class DemoInterrupted(RuntimeError):
    """Ctrl-C / SIGTERM during ``run_demo``: the nodes were stopped and the recording closed, not scored."""


def demo_nodes(out_dir: str, source: str, model_dir: str, backend: str, rate_hz: float, extra_camera: dict | None = None,
               extra_perception: dict | None = None) -> tuple[NodeProcess, NodeProcess]:
    logs = os.path.join(out_dir, "logs")
    os.makedirs(logs, exist_ok=True)
    camera = NodeProcess(
        "vega_ros.sim_camera_node", "sim_camera", config_path("sim_camera.yaml"),
        params={"source": source, "rate_hz": float(rate_hz), **(extra_camera or {})},
        remaps={"image": f"{CAMERA_NS}/image_raw", "camera_info": f"{CAMERA_NS}/camera_info",
                "ground_truth/depth": f"{CAMERA_NS}/ground_truth/depth", "ground_truth/pose": f"{CAMERA_NS}/ground_truth/pose"},
        log_path=os.path.join(logs, "sim_camera.log"),
    )
    perception = NodeProcess(
        "vega_ros.perception_node", "perception", config_path("perception.yaml"),
        params={"model_dir": model_dir, "backend": backend, **(extra_perception or {})},
        remaps={"image": f"{CAMERA_NS}/image_raw", "camera_info": f"{CAMERA_NS}/camera_info"},
        log_path=os.path.join(logs, "perception.log"),
    )
    return camera, perception


def demo_topics():
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped
    from nav_msgs.msg import Odometry, Path
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2
    from std_msgs.msg import Float32MultiArray

    return {
        f"{CAMERA_NS}/image_raw": Image, f"{CAMERA_NS}/camera_info": CameraInfo,
        f"{CAMERA_NS}/ground_truth/depth": Image, f"{CAMERA_NS}/ground_truth/pose": PoseStamped,
        "/depth/image": Image, "/depth/camera_info": CameraInfo, "/depth/confidence": Image, "/points": PointCloud2, "/pose": PoseStamped,
        "/odometry": Odometry, "/path": Path, "/features": Float32MultiArray, "/diagnostics": DiagnosticArray,
    }


def run_demo(out_dir: str = "demo_out", duration: float = 40.0, source: str = "libero", model_dir: str = "",
             backend: str = "auto", rate_hz: float = 10.0, startup_timeout: float = 120.0, log=print) -> dict:
    """Run the demo; returns the summary dict (also written to ``out_dir``). Raises on failure."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from vega_ros import node_main
    from vega_ros.artifact import default_model_dir
    from vega_ros.recorder import McapRecorder

    model_dir = os.path.abspath(model_dir or default_model_dir())
    os.makedirs(out_dir, exist_ok=True)
    bag_dir = os.path.join(out_dir, "bag")
    for stale in ("recording.mcap", "metadata.yaml"):
        if os.path.exists(os.path.join(bag_dir, stale)):
            os.remove(os.path.join(bag_dir, stale))
    camera, perception = demo_nodes(out_dir, source, model_dir, backend, rate_hz)
    log(f"[demo] model {model_dir}, backend {backend}, source {source}, {duration:.0f} s at {rate_hz} Hz")
    node_main.init()
    node = rclpy.create_node("vega_demo_recorder")
    recorder = McapRecorder(node, bag_dir, compression="lz4")
    qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
    for topic, msg_type in demo_topics().items():
        recorder.add_topic(topic, msg_type, qos)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    t_wall0 = time.monotonic()
    try:
        perception.start()
        camera.start()
        deadline = time.monotonic() + startup_timeout
        while recorder.topics["/depth/image"].count == 0:  # wait until the chain runs end to end
            executor.spin_once(timeout_sec=0.1)
            for p in (camera, perception):
                if not p.alive():
                    raise RuntimeError(f"{p.name} exited with {p.proc.returncode} during start-up; see {p.log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no depth within {startup_timeout:.0f} s of start; see {out_dir}/logs/")
        log(f"[demo] first depth after {time.monotonic() - t_wall0:.1f} s; streaming for {duration:.0f} s")
        t_stream0 = time.monotonic()
        next_report = t_stream0 + 10.0
        while time.monotonic() - t_stream0 < duration:
            executor.spin_once(timeout_sec=0.1)
            if time.monotonic() >= next_report:
                next_report += 10.0
                log(f"[demo] {time.monotonic() - t_stream0:.0f} s: {recorder.topics[f'{CAMERA_NS}/image_raw'].count} images, "
                    f"{recorder.topics['/depth/image'].count} depth maps")
            for p in (camera, perception):
                if not p.alive():
                    raise RuntimeError(f"{p.name} exited with {p.proc.returncode} mid-run; see {p.log_path}")
        camera.stop()
        drain = time.monotonic() + 3.0  # let the last frames and one more /diagnostics arrive
        while time.monotonic() < drain:
            executor.spin_once(timeout_sec=0.05)
        stream_s = time.monotonic() - t_stream0
    except KeyboardInterrupt:
        interrupted_after_s = time.monotonic() - t_wall0
    else:
        interrupted_after_s = None
    finally:
        with node_main.uninterruptible():
            stop_all([camera, perception])
            perception_rc = perception.proc.returncode if perception.proc else None
            recorder.close()
            node.destroy_node()
            rclpy.try_shutdown()
    if interrupted_after_s is not None:
        raise DemoInterrupted(f"interrupted after {interrupted_after_s:.1f} s: nodes stopped (perception exit code {perception_rc}), "
                              f"recording closed in {recorder.path}; not scored")
    log(f"[demo] recorded {sum(s.count for s in recorder.topics.values())} messages to {recorder.path}; scoring")
    summary = evaluate_bag(recorder.path, out_dir, model_dir)
    summary["run"] = {"source": source, "requested_duration_s": duration, "streamed_s": round(stream_s, 2), "rate_hz": rate_hz,
                      "backend_requested": backend, "perception_exit_code": perception_rc,
                      "bag": os.path.relpath(bag_dir, out_dir), "command": "vega-ros demo " + " ".join(sys.argv[2:])}
    write_summary(summary, out_dir)
    return summary


# ----------------------------------------------------------------------------- scoring


def _read_bag(path: str):
    """{topic: [(receive_ns, rclpy message)]} for the topics scoring needs, decoded with rclpy."""
    from mcap.reader import make_reader
    from rclpy.serialization import deserialize_message

    types = demo_topics()
    wanted = {f"{CAMERA_NS}/image_raw", f"{CAMERA_NS}/camera_info", f"{CAMERA_NS}/ground_truth/depth",
              f"{CAMERA_NS}/ground_truth/pose", "/depth/image", "/points", "/pose", "/diagnostics"}
    out: dict[str, list] = {t: [] for t in wanted}
    with open(path, "rb") as f:
        for _schema, channel, message in make_reader(f).iter_messages(topics=sorted(wanted)):
            out[channel.topic].append((message.log_time, deserialize_message(message.data, types[channel.topic])))
    return out


def _check_ros2_decodable(path: str) -> dict[str, int]:
    """Decode the first message of every channel with mcap-ros2-support (what ros2 bag tooling reads)."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    seen: dict[str, int] = {}
    with open(path, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        for _s, channel, _m, _decoded in reader.iter_decoded_messages():
            seen[channel.topic] = seen.get(channel.topic, 0) + 1
    return seen


def _stamp_ns(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _colorize(depth: np.ndarray, lo: float, hi: float) -> np.ndarray:
    d = np.clip((depth - lo) / max(hi - lo, 1e-6), 0, 1)
    img = cv2.applyColorMap((255 * (1 - d)).astype(np.uint8), cv2.COLORMAP_TURBO)
    img[depth <= 0] = 0
    return img


def _render_cloud(clouds: list[tuple[np.ndarray, np.ndarray]], size: int = 360) -> np.ndarray:
    """Side-by-side renders of point sets ``(points [N, 3] camera frame, rgb [N, 3])`` from an oblique view."""
    panels = []
    for pts, cols in clouds:
        img = np.full((size, size, 3), 30, np.uint8)
        if len(pts):
            centre = np.median(pts, 0)
            # the original camera's viewpoint swung 35 degrees about the cloud's vertical (camera y) axis and raised a bit
            swing = geometry.axis_angle_to_matrix(np.array([0.0, 1.0, 0.0]), np.deg2rad(35.0))
            eye = centre + swing @ (np.array([0.0, -0.25 * centre[2], 0.0]) - centre)
            T_view = geometry.look_at(eye, centre, up=(0, -1, 0))
            p = geometry.transform_points(geometry.se3_inverse(T_view), pts.astype(np.float64))
            K = geometry.intrinsics_from_fov(size, size, 55.0)
            uv, z = geometry.project_points(p, K)
            ok = (z > 0) & np.all(np.isfinite(uv), -1)
            uv, z, c = uv[ok], z[ok], cols[ok]
            order = np.argsort(-z)  # far first, near points overwrite
            ij = np.floor(uv[order]).astype(int)
            inside = (ij[:, 0] >= 0) & (ij[:, 0] < size) & (ij[:, 1] >= 0) & (ij[:, 1] < size)
            ij, c = ij[inside], c[order][inside]
            img[ij[:, 1], ij[:, 0]] = c[:, ::-1]
        panels.append(img)
    return np.concatenate(panels, 1)


def evaluate_bag(bag_path: str, out_dir: str, model_dir: str) -> dict:
    from vega_ros.artifact import read_card
    from vega_ros.diagnostics import diagnostic_values
    from vega_ros.perception_node import diagnostic_status_name

    card = read_card(model_dir)
    msgs = _read_bag(bag_path)
    decodable = _check_ros2_decodable(bag_path)
    images = {_stamp_ns(m.header): m for _, m in msgs[f"{CAMERA_NS}/image_raw"]}
    gt_depth = {_stamp_ns(m.header): m for _, m in msgs[f"{CAMERA_NS}/ground_truth/depth"]}
    gt_pose = {_stamp_ns(m.header): conversions.pose_stamped_to_matrix(m) for _, m in msgs[f"{CAMERA_NS}/ground_truth/pose"]}
    infos = {_stamp_ns(m.header): m for _, m in msgs[f"{CAMERA_NS}/camera_info"]}
    pred_depth = {_stamp_ns(m.header): m for _, m in msgs["/depth/image"]}
    pred_pose = {_stamp_ns(m.header): conversions.pose_stamped_to_matrix(m) for _, m in msgs["/pose"]}
    recv_latency_ms = [(t - _stamp_ns(m.header)) * 1e-6 for t, m in msgs["/points"]]
    depth_times = [t for t, _ in msgs["/depth/image"]]
    image_times = [t for t, _ in msgs[f"{CAMERA_NS}/image_raw"]]

    # depth against ground truth
    abs_rel, abs_rel_scaled, delta1, scales = [], [], [], []
    matched = sorted(set(pred_depth) & set(gt_depth))
    for st in matched:
        pd = conversions.image_to_depth_m(pred_depth[st])
        gd = conversions.image_to_depth_m(gt_depth[st])
        if pd.shape != gd.shape:
            pd = cv2.resize(pd, gd.shape[::-1], interpolation=cv2.INTER_NEAREST)
        valid = (gd > 0) & (pd > 0)
        if valid.sum() < 10:
            continue
        p, g = pd[valid].astype(np.float64), gd[valid].astype(np.float64)
        abs_rel.append(float(np.mean(np.abs(p - g) / g)))
        s = float(np.median(g) / np.median(p))
        scales.append(s)
        abs_rel_scaled.append(float(np.mean(np.abs(s * p - g) / g)))
        delta1.append(float(np.mean(np.maximum(s * p / g, g / (s * p)) < 1.25)))

    # poses against ground truth
    pose_stamps = sorted(set(pred_pose) & set(gt_pose))
    pose = {"matched_frames": len(pose_stamps)}
    if len(pose_stamps) >= 3:
        P = np.stack([pred_pose[s] for s in pose_stamps])
        G = np.stack([gt_pose[s] for s in pose_stamps])
        try:
            scale, R, t = geometry.umeyama_alignment(P[:, :3, 3], G[:, :3, 3], with_scale=True)
            aligned = (scale * (R @ P[:, :3, 3].T)).T + t
            pose["ate_rmse_m_sim3"] = float(np.sqrt(np.mean(np.sum((aligned - G[:, :3, 3]) ** 2, 1))))
        except ValueError:  # the published pose never moved (e.g. odometry never initialised on a random model)
            pose["ate_rmse_m_sim3"] = None
            pose["note"] = "the published pose never moved: no Sim(3) alignment (see odometry.* in diagnostics)"
        pose["gt_path_length_m"] = float(np.sum(np.linalg.norm(np.diff(G[:, :3, 3], axis=0), axis=1)))
        pose["pred_path_length_m"] = float(np.sum(np.linalg.norm(np.diff(P[:, :3, 3], axis=0), axis=1)))
        idx = odometry_metrics.pair_indices(len(pose_stamps))
        r_err, t_err = geometry.pairwise_relative_pose_errors(P[idx], G[idx])
        pose["rel_rotation_err_deg_median"] = float(np.median(r_err))
        pose["rel_translation_dir_err_deg_median"] = float(np.median(t_err))
        pose["auc30"] = geometry.pose_auc(r_err, t_err, 30)
        pose["pairs"] = int(r_err.size)
        pose["ate_rmse_m"] = odometry_metrics.ate_rmse_m(P, G)
        pose["ate_pct_of_path"] = odometry_metrics.ate_percent(P, G) if pose["gt_path_length_m"] > 0 else None
        caption = f"ATE {n_fmt(pose['ate_pct_of_path'])} % of path (no alignment), AUC@30 {pose['auc30']:.3f}"
        cv2.imwrite(os.path.join(out_dir, "trajectory.png"), plot_trajectories(P, G, caption))

    diag = {}
    for _, m in reversed(msgs["/diagnostics"]):
        values = diagnostic_values(m, diagnostic_status_name("perception"))
        if values:
            diag = values
            break

    def f(key):
        try:
            return float(diag[key])
        except (KeyError, ValueError):
            return None

    def rate(times):
        return (len(times) - 1) / ((times[-1] - times[0]) * 1e-9) if len(times) > 2 and times[-1] > times[0] else 0.0

    summary = {
        "model": {"name": card.name, "random_init": card.random_init, "depth_scale": card.depth_scale.value,
                  "wan_teacher": bool(card.training.get("wan_teacher", False)), "path": model_dir},
        "backend": diag.get("backend"),
        "frames": {"camera_images": len(images), "depth_published": len(pred_depth), "matched_with_ground_truth": len(matched),
                   "received_by_node": f("frames_received"), "processed_by_node": f("frames_processed"),
                   "dropped_busy": f("dropped_busy"), "rejected_total": f("rejected.total"), "keyframes": f("keyframes")},
        "rates_hz": {"camera": round(rate(image_times), 2), "perception_output": round(rate(depth_times), 2),
                     "node_reported": f("rate_hz")},
        "latency_ms": {
            "stamp_to_cloud_publish_p50": f("latency_ms.p50"), "stamp_to_cloud_publish_p95": f("latency_ms.p95"),
            "stamp_to_cloud_received_p50": float(np.percentile(recv_latency_ms, 50)) if recv_latency_ms else None,
            "stamp_to_cloud_received_p95": float(np.percentile(recv_latency_ms, 95)) if recv_latency_ms else None,
            "model_p50": f("model_ms.p50"), "encoder_p50": f("encoder_ms.p50"), "heads_p50": f("heads_ms.p50"),
            "node_overhead_p50": f("overhead_ms.p50"),
        },
        "depth": {
            "frames": len(abs_rel),
            "abs_rel": float(np.mean(abs_rel)) if abs_rel else None,
            "abs_rel_median_scaled": float(np.mean(abs_rel_scaled)) if abs_rel_scaled else None,
            "delta1_median_scaled": float(np.mean(delta1)) if delta1 else None,
            "median_scale_gt_over_pred": float(np.median(scales)) if scales else None,
        },
        "pose": pose,
        "bag": {"path": os.path.relpath(bag_path, out_dir), "bytes": os.path.getsize(bag_path), "decoded_by_mcap_ros2": decodable},
    }

    # pictures: a few frames of image | prediction | ground truth, and one frame's clouds
    picks = [matched[i] for i in np.linspace(0, len(matched) - 1, min(4, len(matched))).astype(int)] if matched else []
    written = []
    for k, st in enumerate(picks):
        rgb = conversions.image_to_rgb(images[st]) if st in images else None
        pd = conversions.image_to_depth_m(pred_depth[st])
        gd = conversions.image_to_depth_m(gt_depth[st])
        lo, hi = np.percentile(gd[gd > 0], [2, 98]) if np.any(gd > 0) else (0.0, 1.0)
        panel = [cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)] if rgb is not None else []
        panel += [_colorize(pd, lo, hi), _colorize(gd, lo, hi)]
        h = min(p.shape[0] for p in panel)
        panel = [cv2.resize(p, (int(p.shape[1] * h / p.shape[0]), h)) for p in panel]
        path = os.path.join(out_dir, f"depth_{k:02d}.png")
        cv2.imwrite(path, np.concatenate(panel, 1))
        written.append(os.path.basename(path))
    if picks and picks[-1] in infos and picks[-1] in images:
        st = picks[-1]
        K = conversions.camera_info_to_intrinsics(infos[st]).K
        rgb = conversions.image_to_rgb(images[st])
        clouds = []
        for d in (conversions.image_to_depth_m(pred_depth[st]), conversions.image_to_depth_m(gt_depth[st])):
            pts = geometry.depth_to_points(d, K)[::2, ::2].reshape(-1, 3)
            cols = rgb[::2, ::2].reshape(-1, 3)
            ok = pts[:, 2] > 0
            clouds.append((pts[ok], cols[ok]))
        cv2.imwrite(os.path.join(out_dir, "cloud.png"), _render_cloud(clouds))
        written.append("cloud.png")
    if os.path.exists(os.path.join(out_dir, "trajectory.png")) and len(pose_stamps) >= 3:
        written.append("trajectory.png")
    summary["pictures"] = written
    return summary


def n_fmt(v, fmt: str = "{:.3g}") -> str:
    """A number for the summary, or n/a."""
    return "n/a" if v is None else fmt.format(v)


def write_summary(summary: dict, out_dir: str) -> None:
    with open(os.path.join(out_dir, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=2)
    m, fr, lat, d, p, r = (summary["model"], summary["frames"], summary["latency_ms"], summary["depth"], summary["pose"], summary["rates_hz"])

    n = n_fmt

    counts = " / ".join(n(fr[k], "{:.0f}") for k in ("received_by_node", "processed_by_node", "dropped_busy", "rejected_total"))
    rel_pose = (f"{n(p.get('rel_rotation_err_deg_median'))} / {n(p.get('rel_translation_dir_err_deg_median'))} deg, "
                f"AUC@30 {n(p.get('auc30'))}")
    warn = (
        f"> **{m['name']} is a random-init model**: its depth and poses carry no information, so the accuracy "
        "numbers below only show that the pipeline measures them. They are expected to be bad.\n\n" if m["random_init"] else ""
    )
    text = f"""# vega-ros demo summary

{warn}Model `{m['name']}` (depth scale: {m['depth_scale']}, WAN teacher: {m['wan_teacher']}) on backend: {summary.get('backend')}.
Source: {summary.get('run', {}).get('source')} camera, streamed {summary.get('run', {}).get('streamed_s')} s.

| what | value |
|---|---|
| camera images published | {fr['camera_images']} ({r['camera']} Hz) |
| depth maps published | {fr['depth_published']} ({r['perception_output']} Hz) |
| node: received / processed / dropped (busy) / rejected | {counts} |
| keyframes | {n(fr['keyframes'], '{:.0f}')} |
| latency image stamp -> cloud publish p50 / p95 (node) | {n(lat['stamp_to_cloud_publish_p50'])} / {n(lat['stamp_to_cloud_publish_p95'])} ms |
| latency image stamp -> cloud received p50 / p95 (recorder) | {n(lat['stamp_to_cloud_received_p50'])} / {n(lat['stamp_to_cloud_received_p95'])} ms |
| model time p50 (encoder + heads) | {n(lat['model_p50'])} ms ({n(lat['encoder_p50'])} + {n(lat['heads_p50'])}) |
| node overhead p50 (convert + publish) | {n(lat['node_overhead_p50'])} ms |
| depth AbsRel (metric, as published) | {n(d['abs_rel'])} over {d['frames']} frames |
| depth AbsRel after per-frame median scaling | {n(d['abs_rel_median_scaled'])} (delta<1.25: {n(d['delta1_median_scaled'])}) |
| pose ATE RMSE, no alignment | {n(p.get('ate_rmse_m'))} m = {n(p.get('ate_pct_of_path'))} % of the true path ({n(p.get('gt_path_length_m'))} m) |
| pose ATE RMSE after Sim(3) alignment | {n(p.get('ate_rmse_m_sim3'))} m |
| relative pose AUC@30 ({p.get('pairs', 0)} ordered pairs of evenly spaced frames) | {n(p.get('auc30'))} |
| relative pose: median rotation / translation-direction error | {rel_pose} |

Recording: `{summary['bag']['path']}` ({summary['bag']['bytes'] / 1e6:.1f} MB; every channel decodes with mcap-ros2-support).
Pictures: {', '.join(summary.get('pictures', []))} (image | predicted depth | ground-truth depth, one colour scale per row;
cloud.png: predicted | ground-truth point cloud of the last scored frame from an oblique view;
trajectory.png: published (red) against true (green) camera positions, top and side view).
"""
    with open(os.path.join(out_dir, "summary.md"), "w") as fh:
        fh.write(text)
