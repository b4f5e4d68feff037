"""Soak benchmark: the perception node held under load, over real DDS, for minutes.

    python bench/bench_soak.py [--minutes 10] [--rate 30] [--model models/vega-random-tiny] [--malformed 10000]

What it does, in order, against ONE perception node process (``python -m vega_ros.perception_node``):

1. A camera publisher process (this script with ``--camera``) streams rgb8 Image + CameraInfo at
   ``--rate`` Hz. The node's RSS is sampled from ``/proc/<pid>/status`` every ``--sample-s``.
2. At 40 % of the run the publisher is SIGKILLed (no goodbye), restarted after ``--gap-s``, and the
   node must process frames again by itself (``frames_processed`` rises after the restart).
3. From 50 % on, ``--malformed`` malformed Image / CameraInfo messages (wrong encoding, wrong size,
   truncated data, NaN / zero intrinsics, out-of-order stamps; tests/fixtures/fuzz_peer.py's
   kinds) are sent to the node's topics while the valid stream goes on; each reason's counter in
   /diagnostics must rise by exactly the number sent.
4. CompressedImage (``image/compressed``, parameter ``image_transport: compressed``): a second,
   short-lived node started with that parameter gets ``--malformed-compressed`` messages of
   tests/fixtures/fuzz_peer.py's COMPRESSED_KINDS: corrupt / truncated / empty JPEG and PNG payloads
   (each must be ``rejected.bad_compressed``) and ``mislabeled_format``, a valid JPEG under a format
   string naming another codec, which the node decodes by content (as compressed_image_transport
   does) and so must accept as a frame, then process or replace by a newer one (``dropped_busy``).
   The bench waits until the node has received every message and its worker is idle, and checks the
   accounting is exact; if the node does not subscribe to ``image/compressed``, the table says so.
5. SIGINT: the node must exit 0.

Goals (issue 34): RSS growth < 5 % (median of the last 10 % of samples over the median of the
samples just after warm-up), zero crashes, recovery after the restart, every malformed message
counted. Prints a table and writes ``docs/bench/soak.json``. Timing-free: nothing here fails on
wall time; the numbers are reported.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

W, H = 64, 48  # the fuzz peer's frame size: its malformed messages are built against a 64x48 camera_info
NODE = "soak_perception"
COMPRESSED_NODE = "soak_perception_compressed"


# ----------------------------------------------------------------------------- the camera process


def run_camera(namespace: str, rate_hz: float) -> None:
    """Publish valid rgb8 frames + CameraInfo at ``rate_hz`` in ``namespace`` until SIGINT / SIGKILL."""
    from rclpy.node import Node
    from sensor_msgs.msg import CameraInfo, Image

    from tests.fixtures.fuzz_peer import valid_image, valid_info
    from vega_ros.node_main import run_node

    class SoakCamera(Node):
        def __init__(self):
            super().__init__("soak_camera", namespace=namespace)
            self.rng = np.random.default_rng(int(time.time()))
            self.pub_image = self.create_publisher(Image, "image", 10)
            self.pub_info = self.create_publisher(CameraInfo, "camera_info", 10)
            self.create_timer(1.0 / rate_hz, self._tick)

        def _tick(self) -> None:
            stamp = self.get_clock().now().nanoseconds * 1e-9
            self.pub_info.publish(valid_info(stamp))
            self.pub_image.publish(valid_image(self.rng, stamp))

    run_node(SoakCamera, [], name="soak_camera")


# ----------------------------------------------------------------------------- malformed messages


IMAGE_INFO_KINDS = ("unknown_encoding", "step_too_small", "length_mismatch", "zero_size", "size_change",
                    "nan_k", "zero_fx", "zero_info_size", "nan_d")  # fuzz_peer's, out_of_order built here against the live stream
# CompressedImage kinds: tests/fixtures/fuzz_peer.py's COMPRESSED_KINDS (four undecodable ones -> rejected.bad_compressed,
# and mislabeled_format, a valid JPEG under a wrong format string, which the node decodes by content: a good frame)
COMPRESSED_COUNTERS = ("frames_received", "frames_accepted", "frames_processed", "dropped_busy", "dropped_reset",
                       "dropped_no_subscribers", "rejected.total", "rejected.bad_compressed")


def compressed_accounting(sent: dict, before: dict, after: dict) -> dict:
    """Where each CompressedImage of ``sent`` ({kind: n}) went, from the node's diagnostics ``before`` / ``after``.

    Exact when: every message was received; each undecodable one is ``rejected.bad_compressed`` (and nothing
    is rejected for another reason); each mislabeled one is accepted as a frame (or, lazy with nobody
    subscribed to the outputs, ``dropped_no_subscribers``); and each accepted frame is processed or replaced
    by a newer one before the worker got to it (``dropped_busy``, latest-frame-wins) or by a stream reset.
    """
    from tests.fixtures.fuzz_peer import MISLABELED_COMPRESSED_KIND, UNDECODABLE_COMPRESSED_KINDS

    def delta(key: str) -> float:
        return float(after.get(key, 0)) - float(before.get(key, 0))

    d = {k: delta(k) for k in COMPRESSED_COUNTERS}
    total = sum(sent.values())
    undecodable = sum(n for k, n in sent.items() if k in UNDECODABLE_COMPRESSED_KINDS)
    mislabeled = sent.get(MISLABELED_COMPRESSED_KIND, 0)
    other_rejections = {k: delta(k) for k in after if k.startswith("rejected.") and k not in ("rejected.total", "rejected.bad_compressed")
                        and delta(k) != 0}
    checks = {
        "received": d["frames_received"] == total,
        "undecodable_rejected": d["rejected.bad_compressed"] == undecodable and d["rejected.total"] == undecodable,
        "mislabeled_accepted": d["frames_accepted"] + d["dropped_no_subscribers"] == mislabeled,
        "accepted_processed_or_replaced": d["frames_processed"] + d["dropped_busy"] + d["dropped_reset"] == d["frames_accepted"],
    }
    return {
        "sent": total, "undecodable_sent": undecodable, "rejected_bad_compressed": d["rejected.bad_compressed"],
        "mislabeled_sent": mislabeled, "accepted": d["frames_accepted"], "processed": d["frames_processed"],
        "replaced_dropped_busy": d["dropped_busy"], "dropped_reset": d["dropped_reset"],
        "accounted": d["rejected.bad_compressed"] + d["dropped_no_subscribers"] + d["frames_processed"] + d["dropped_busy"] + d["dropped_reset"],
        "counter_deltas": d, "other_rejections": other_rejections, "checks": checks, "all_accounted": all(checks.values()),
    }


# ----------------------------------------------------------------------------- the run


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def start_node(namespace: str, name: str, model: str, extra: dict, log_path: str) -> subprocess.Popen:
    # inputs reliable with a deep queue (every malformed message must reach the node to be counted);
    # lazy off: the soak runs the model on every frame although nothing subscribes to the outputs
    ns = "/" + namespace.strip("/")
    inputs = {f"qos_overrides.{ns}/{topic}.subscription.{policy}": value
              for topic in ("image", "image/compressed", "camera_info") for policy, value in (("reliability", "reliable"), ("depth", 1000))}
    params = {"model_dir": model, "backend": "onnxruntime-cpu", "intra_op_threads": 1, "inter_op_threads": 1, "lazy": "false",
              **inputs, **extra}
    cmd = [sys.executable, "-m", "vega_ros.perception_node", "--ros-args", "-r", f"__node:={name}", "-r", f"__ns:={namespace}",
           "--params-file", os.path.join(ROOT, "config", "perception.yaml")]
    for k, v in params.items():
        cmd += ["-p", f"{k}:={v}"]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, stdout=open(log_path, "w"),  # noqa: SIM115
                            stderr=subprocess.STDOUT)


def start_camera(namespace: str, rate_hz: float, log_path: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, os.path.abspath(__file__), "--camera", namespace, "--rate", str(rate_hz)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": ROOT}, stdout=open(log_path, "a"), stderr=subprocess.STDOUT)  # noqa: SIM115


class Probe:
    """The bench's own rclpy node: diagnostics of the node under test, and publishers of malformed messages."""

    def __init__(self, namespace: str):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import CameraInfo, CompressedImage, Image

        from vega_ros.diagnostics import diagnostic_values
        from vega_ros.node_main import init

        init([])
        self.rclpy = rclpy
        self.node = rclpy.create_node("soak_probe", namespace=namespace)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.values: dict[str, dict[str, str]] = {}
        self._decode = diagnostic_values
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5000, reliability=ReliabilityPolicy.RELIABLE)
        self.pubs = {"image": self.node.create_publisher(Image, "image", qos),
                     "camera_info": self.node.create_publisher(CameraInfo, "camera_info", qos)}
        self.compressed_qos = qos
        self.CompressedImage = CompressedImage

    def _on_diag(self, msg) -> None:
        for name in (NODE, COMPRESSED_NODE):
            v = self._decode(msg, f"vega_ros/{name}")
            if v:
                self.values[name] = v

    def spin_for(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.05, max(0.0, end - time.monotonic())))

    def counter(self, name: str, key: str) -> float:
        try:
            return float(self.values.get(name, {}).get(key, 0.0))
        except ValueError:
            return math.nan

    def fresh_diagnostics(self, name: str, timeout: float = 10.0) -> dict[str, str]:
        """The next diagnostics message of ``name`` after now."""
        self.values.pop(name, None)
        end = time.monotonic() + timeout
        while name not in self.values and time.monotonic() < end:
            self.spin_for(0.1)
        return self.values.get(name, {})

    def close(self) -> None:
        self.node.destroy_node()
        self.rclpy.try_shutdown()


def send_malformed(probe: Probe, count: int, rng: np.random.Generator) -> Counter:
    """``count`` malformed Image / CameraInfo messages into the live stream; {reason: n sent}."""
    from tests.fixtures.fuzz_peer import malformed, valid_image

    sent: Counter[str] = Counter()
    for i in range(count):
        now = probe.node.get_clock().now().nanoseconds * 1e-9
        if i % 10 == 9:  # out of order: a valid frame 0.3 s older than the stream (less than stamp_reset_s)
            topic, msg, reason = "image", valid_image(rng, now - 0.3), "out_of_order"
        else:
            topic, msg, reason = malformed(IMAGE_INFO_KINDS[int(rng.integers(len(IMAGE_INFO_KINDS)))], rng, now)
        probe.pubs[topic].publish(msg)
        sent[reason] += 1
        if i % 50 == 49:
            probe.spin_for(0.03)  # pace the reliable writer; diagnostics keep arriving
    return sent


def run_compressed_phase(args, namespace: str, rng: np.random.Generator, out_dir: str, probe: Probe) -> dict:
    """A node with image_transport: compressed gets ``args.malformed_compressed`` broken / mislabeled CompressedImages."""
    from tests.fixtures.fuzz_peer import COMPRESSED_KINDS, compressed, valid_info

    ns = namespace + "_compressed"
    topic = f"/{ns.strip('/')}/image/compressed"
    proc = start_node(ns, COMPRESSED_NODE, args.model, {"image_transport": "compressed", "diagnostics_period_s": 0.5},
                      os.path.join(out_dir, "perception_compressed.log"))
    pub = probe.node.create_publisher(probe.CompressedImage, topic, probe.compressed_qos)
    info_pub = probe.node.create_publisher(type(valid_info(0.0)), f"/{ns.strip('/')}/camera_info", probe.compressed_qos)
    result = {"node_subscribes": False, "sent": 0, "counted": 0, "crashed": False}
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None and probe.node.count_subscribers(f"/{ns.strip('/')}/camera_info") == 0:
            probe.spin_for(0.2)
        probe.spin_for(1.0)
        if pub.get_subscription_count() == 0:
            result["note"] = ("the node does not subscribe to image/compressed with image_transport: compressed "
                              "(CompressedImage input not available on this branch): nothing sent")
            return result
        result["node_subscribes"] = True
        # the reliability the node's image/compressed reader runs with (did the qos_override take effect?); discovery
        # does not carry the history depth, and every message being received (checks.received) is the test of that
        result["subscription_reliability"] = [e.qos_profile.reliability.name.lower() for e in probe.node.get_subscriptions_info_by_topic(topic)]
        info_pub.publish(valid_info(probe.node.get_clock().now().nanoseconds * 1e-9))
        probe.spin_for(0.5)
        before = probe.fresh_diagnostics(COMPRESSED_NODE)
        sent: Counter[str] = Counter()
        for i in range(args.malformed_compressed):
            kind = COMPRESSED_KINDS[int(rng.integers(len(COMPRESSED_KINDS)))]
            pub.publish(compressed(kind, rng, probe.node.get_clock().now().nanoseconds * 1e-9))
            sent[kind] += 1
            if i % 50 == 49:
                probe.spin_for(0.03)
        # until the node has read every message and its worker has no frame left, or 60 s
        t_sent, after = time.monotonic(), {}
        while time.monotonic() - t_sent < 60 and proc.poll() is None:
            after = probe.fresh_diagnostics(COMPRESSED_NODE)
            acc = compressed_accounting(sent, before, after)
            if acc["checks"]["received"] and acc["checks"]["accepted_processed_or_replaced"]:
                break
        acc = compressed_accounting(sent, before, after)
        result.update(sent_by_kind=dict(sent), seconds_to_drain=round(time.monotonic() - t_sent, 2), **acc,
                      counted=acc["accounted"],  # every message: rejected as bad_compressed, or a frame processed / replaced
                      counted_by_reason={k: float(v) - float(before.get(k, 0)) for k, v in after.items()
                                         if k.startswith("rejected.") and float(v) != float(before.get(k, 0))})
        result["crashed"] = proc.poll() is not None
    finally:
        probe.node.destroy_publisher(pub)
        probe.node.destroy_publisher(info_pub)
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                result["exit_code"] = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                result["exit_code"] = "killed after 20 s"
        else:
            result["exit_code"] = proc.returncode
            result["crashed"] = True
    return result


def run(args) -> dict:
    out_dir = args.log_dir
    os.makedirs(out_dir, exist_ok=True)
    namespace = f"/soak_{os.getpid()}"
    rng = np.random.default_rng(args.seed)
    duration = args.minutes * 60.0
    node = start_node(namespace, NODE, args.model, {}, os.path.join(out_dir, "perception.log"))
    camera = start_camera(namespace, args.rate, os.path.join(out_dir, "camera.log"))
    probe = Probe(namespace)
    rss: list[tuple[float, int]] = []
    events: dict = {}
    t0 = time.monotonic()
    try:
        while not probe.counter(NODE, "frames_processed") > 0:
            probe.spin_for(0.2)
            if node.poll() is not None:
                raise RuntimeError(f"the perception node exited with {node.returncode} during start-up; see {out_dir}/perception.log")
            if time.monotonic() - t0 > 120:
                raise RuntimeError(f"no frame processed within 120 s; see {out_dir}/")
        t_start = time.monotonic()
        print(f"[soak] first frame processed after {t_start - t0:.1f} s; {args.minutes:g} min at {args.rate:g} Hz", flush=True)
        next_sample = t_start
        restarted = malformed_done = False
        while (elapsed := time.monotonic() - t_start) < duration:
            probe.spin_for(0.1)
            if node.poll() is not None:
                events["crash"] = {"after_s": round(elapsed, 1), "exit_code": node.returncode}
                break
            if time.monotonic() >= next_sample:
                rss.append((round(elapsed, 1), rss_kb(node.pid)))
                next_sample += args.sample_s
            if not restarted and elapsed >= 0.4 * duration:
                before = probe.fresh_diagnostics(NODE)
                camera.kill()
                camera.wait()
                probe.spin_for(args.gap_s)
                processed_during_gap = probe.fresh_diagnostics(NODE).get("frames_processed")
                camera = start_camera(namespace, args.rate, os.path.join(out_dir, "camera.log"))
                t_restart = time.monotonic()
                p_restart = probe.counter(NODE, "frames_processed")
                while probe.counter(NODE, "frames_processed") <= p_restart + 5 and time.monotonic() - t_restart < 60:
                    probe.spin_for(0.2)
                events["publisher_restart"] = {
                    "at_s": round(elapsed, 1), "gap_s": args.gap_s, "frames_processed_before_kill": before.get("frames_processed"),
                    "frames_processed_during_gap": processed_during_gap,
                    "recovered": probe.counter(NODE, "frames_processed") > p_restart + 5,
                    "seconds_to_5_frames_after_restart": round(time.monotonic() - t_restart, 2)}
                restarted = True
            if restarted and not malformed_done and elapsed >= 0.5 * duration:
                before = probe.fresh_diagnostics(NODE)
                sent = send_malformed(probe, args.malformed, rng)
                probe.spin_for(2.0)
                after = probe.fresh_diagnostics(NODE)
                counted = {r: float(after.get(f"rejected.{r}", 0)) - float(before.get(f"rejected.{r}", 0)) for r in sent}
                events["malformed"] = {"sent": sum(sent.values()), "sent_by_reason": dict(sent), "counted_by_reason": counted,
                                       "all_counted": all(counted[r] == n for r, n in sent.items()),
                                       "engine_errors": float(after.get("rejected.engine_error", 0))}
                malformed_done = True
        final = probe.fresh_diagnostics(NODE)
        if args.malformed_compressed:
            events["compressed"] = run_compressed_phase(args, namespace, rng, out_dir, probe)
    finally:
        for p in (camera, node):
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        codes = {}
        for name, p in (("camera", camera), ("perception", node)):
            try:
                codes[name] = p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = "killed after 20 s"
        probe.close()
    kb = np.array([v for _, v in rss], dtype=np.float64)
    warm = max(1, len(kb) // 10)
    base, end = float(np.median(kb[warm:2 * warm])), float(np.median(kb[-warm:]))
    return {
        "command": "python bench/bench_soak.py " + " ".join(sys.argv[1:]),
        "model": os.path.relpath(args.model, ROOT), "minutes": args.minutes, "rate_hz": args.rate, "frame": f"{W}x{H} rgb8",
        "rss_kb": {"after_warmup_median": base, "end_median": end, "max": float(kb.max()), "samples": len(kb),
                   "growth_pct": round(100.0 * (end - base) / base, 2)},
        "frames": {k: final.get(k) for k in ("frames_received", "frames_accepted", "frames_processed", "dropped_busy",
                                             "stream_resets", "rejected.total", "rejected.engine_error", "rate_hz")},
        "crashes": 0 if "crash" not in events and codes.get("perception") == 0 else 1,
        "exit_codes": codes, **events,
        "rss_series_kb": rss,
    }


def print_table(r: dict) -> None:
    m, rs, comp = r.get("malformed", {}), r.get("publisher_restart", {}), r.get("compressed", {})
    rows = [
        ("run", f"{r['minutes']:g} min at {r['rate_hz']:g} Hz, {r['frame']}, model {r['model']}"),
        ("RSS after warm-up / end / max (MB)", f"{rs_mb(r, 'after_warmup_median')} / {rs_mb(r, 'end_median')} / {rs_mb(r, 'max')}"),
        ("RSS growth (goal < 5 %)", f"{r['rss_kb']['growth_pct']} %"),
        ("crashes (goal 0)", str(r["crashes"])),
        ("perception exit code on SIGINT", str(r["exit_codes"].get("perception"))),
        ("frames received / processed / dropped busy", f"{r['frames'].get('frames_received')} / {r['frames'].get('frames_processed')} / "
                                                       f"{r['frames'].get('dropped_busy')}"),
        ("publisher killed at / recovered / s to 5 frames", f"{rs.get('at_s')} s / {rs.get('recovered')} / {rs.get('seconds_to_5_frames_after_restart')}"),
        ("malformed Image+CameraInfo sent / all counted", f"{m.get('sent')} / {m.get('all_counted')}"),
        ("engine errors", str(r["frames"].get("rejected.engine_error"))),
        ("CompressedImage sent / accounted / exact", f"{comp.get('sent')} / {comp.get('counted'):g} / {comp.get('all_accounted')}"
         if comp.get("node_subscribes") else comp.get("note", "not run")),
        ("  undecodable sent / rejected bad_compressed", f"{comp.get('undecodable_sent')} / {comp.get('rejected_bad_compressed'):g}"
         if comp.get("node_subscribes") else "-"),
        ("  mislabeled sent / accepted / processed + replaced", f"{comp.get('mislabeled_sent')} / {comp.get('accepted'):g} / "
                                                                f"{comp.get('processed'):g} + {comp.get('replaced_dropped_busy'):g}"
         if comp.get("node_subscribes") else "-"),
    ]
    width = max(len(a) for a, _ in rows)
    print(f"| {'what'.ljust(width)} | value |\n|{'-' * (width + 2)}|-------|")
    for a, b in rows:
        print(f"| {a.ljust(width)} | {b} |")
    if m:
        print("malformed by reason (sent -> counted): " + ", ".join(f"{k} {v} -> {m['counted_by_reason'][k]:g}"
                                                               for k, v in sorted(m["sent_by_reason"].items())))


def rs_mb(r: dict, key: str) -> str:
    return f"{r['rss_kb'][key] / 1024:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=30.0, help="camera rate (Hz)")
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "vega-random-tiny"))
    parser.add_argument("--malformed", type=int, default=10000, help="malformed Image / CameraInfo messages")
    parser.add_argument("--malformed-compressed", type=int, default=1000, help="malformed CompressedImage messages (0 = skip)")
    parser.add_argument("--gap-s", type=float, default=3.0, help="seconds the killed publisher stays down")
    parser.add_argument("--sample-s", type=float, default=2.0, help="RSS sampling period (s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "bench", "soak.json"))
    parser.add_argument("--log-dir", default=os.path.join(tempfile.gettempdir(), "vega_soak"), help="node logs")
    parser.add_argument("--camera", default=None, help=argparse.SUPPRESS)  # internal: run as the camera publisher in this namespace
    args = parser.parse_args()
    if args.camera:
        run_camera(args.camera, args.rate)
        return
    args.model = os.path.abspath(args.model)
    result = run(args)
    print_table(result)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"[soak] wrote {os.path.relpath(args.out, ROOT)}")


if __name__ == "__main__":
    main()
