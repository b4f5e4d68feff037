"""Ctrl-C ends every vega_ros process cleanly: exit code 0, no traceback, no error logged.

Each process gets SIGINT twice, 10 ms apart, as it does under ``ros2 launch`` in a terminal (the
terminal's Ctrl-C reaches the whole process group and launch forwards its own SIGINT).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.fixtures.ros_helpers import ROOT, unique

pytestmark = pytest.mark.ros


class Watched:
    """A process whose merged stdout / stderr is read line by line in the background."""

    def __init__(self, cmd: list[str]):
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            assert self.proc.poll() is None, f"exited with {self.proc.returncode} before '{needle}':\n{self.text[-3000:]}"
            assert time.monotonic() < deadline, f"no '{needle}' within {timeout} s:\n{self.text[-3000:]}"
            time.sleep(0.05)

    def interrupt(self, timeout: float = 30.0) -> tuple[int, float]:
        """SIGINT twice; (exit code, seconds from the first SIGINT to the exit)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        time.sleep(0.01)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        self._reader.join(timeout=5.0)
        return rc, time.monotonic() - t0


def _node(module: str, name: str, ns: str, *params: str, remaps: tuple[str, ...] = ()) -> list[str]:
    cmd = [sys.executable, "-m", module, "--ros-args", "-r", f"__node:={name}", "-r", f"__ns:={ns}"]
    for p in params:
        cmd += ["-p", p]
    for r in remaps:
        cmd += ["-r", r]
    return cmd


def _assert_clean(w: Watched, rc: int, seconds: float) -> None:
    print(f"{w.proc.args[2] if len(w.proc.args) > 2 else w.proc.args}: exit {rc} {seconds:.2f} s after SIGINT")
    assert rc == 0, w.text[-3000:]
    assert "Traceback" not in w.text, w.text[-3000:]
    assert "[ERROR]" not in w.text and "[FATAL]" not in w.text, w.text[-3000:]


def test_sim_camera_streaming_exits_0_on_sigint():
    ns = "/" + unique("shutdown_cam")
    w = Watched(_node("vega_ros.sim_camera_node", "sim_camera", ns, "source:=synthetic", "rate_hz:=30.0"))
    w.wait_for("scene ready")
    time.sleep(1.0)  # its timer is publishing
    _assert_clean(w, *w.interrupt())


def test_perception_node_under_load_and_its_camera_exit_0_on_sigint():
    ns = "/" + unique("shutdown_perc")
    cam = Watched(_node("vega_ros.sim_camera_node", "sim_camera", ns, "source:=synthetic", "rate_hz:=15.0",
                        remaps=("image:=image_raw",)))
    perc = Watched(_node("vega_ros.perception_node", "perception", ns, "backend:=onnxruntime-cpu", "intra_op_threads:=1",
                         remaps=("image:=image_raw",)))
    try:
        cam.wait_for("scene ready")
        perc.wait_for("INFO")
        time.sleep(4.0)  # frames flowing through the worker
        _assert_clean(perc, *perc.interrupt())
    finally:
        _assert_clean(cam, *cam.interrupt())


def test_policy_node_exits_0_on_sigint():
    ns = "/" + unique("shutdown_policy")
    w = Watched(_node("vega_ros.policy_node", "policy_node", ns, "policy:=noop", "rate_hz:=50.0"))
    w.wait_for("on_stale")
    time.sleep(0.5)
    _assert_clean(w, *w.interrupt())


def test_policy_node_refuses_a_missing_artifact_with_exit_2():
    w = Watched(_node("vega_ros.policy_node", "policy_node", "/" + unique("refuse"), "policy:=/no/such/policy", "task:=x"))
    rc = w.proc.wait(timeout=60)
    w._reader.join(timeout=5.0)
    assert rc == 2 and "cannot start" in w.text and "Traceback" not in w.text, w.text[-2000:]


def test_bringup_exits_0_on_sigint_and_its_nodes_too():
    w = Watched([sys.executable, "-m", "vega_ros.cli", "bringup", "--sim-source", "synthetic"])
    w.wait_for("[bringup] ")
    time.sleep(8.0)  # both nodes up and streaming
    rc, seconds = w.interrupt()
    _assert_clean(w, rc, seconds)
    assert "ended with exit code" not in w.text


def test_demo_interrupted_exits_0_with_its_recording_closed(tmp_path):
    out = tmp_path / "demo"
    w = Watched([sys.executable, "-m", "vega_ros.cli", "demo", "--source", "synthetic", "--duration", "120", "--out", str(out)])
    w.wait_for("first depth", timeout=120)
    time.sleep(1.0)
    rc, seconds = w.interrupt()
    _assert_clean(w, rc, seconds)
    assert "interrupted after" in w.text and "not scored" in w.text
    assert (out / "bag" / "metadata.yaml").is_file()  # the recorder closed its bag
