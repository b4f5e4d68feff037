"""`vega-ros bringup` starts the camera and perception nodes from the params files as separate processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sensor_msgs.msg import Image, PointCloud2

from tests.fixtures.ros_helpers import ROOT, RosTestNode, unique


@pytest.mark.ros
def test_bringup_runs_the_nodes_from_the_yaml():
    proc = subprocess.Popen([sys.executable, "-m", "vega_ros.cli", "bringup", "--params", "config/perception.yaml",
                             "--sim-source", "synthetic", "--duration", "60"],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t = RosTestNode(unique("bringup_test"))
    try:
        depth = t.collect(Image, "/depth/image")
        clouds = t.collect(PointCloud2, "/points")
        assert t.spin_until(lambda: len(depth) >= 3 and len(clouds) >= 3, 90, [proc]), "no depth / cloud from the bringup nodes"
    finally:
        t.close()
        proc.send_signal(2)
        out, _ = proc.communicate(timeout=30)
    assert "--params-file" in out and "vega_ros.perception_node" in out and "vega_ros.sim_camera_node" in out
    assert depth[0].header.frame_id == "camera_optical" and depth[0].encoding == "32FC1"
    assert proc.returncode == 0, out[-2000:]


def test_stop_all_escalates_for_a_process_that_ignores_sigint():
    """`vega-ros bringup` stops its nodes with demo.stop_all: SIGINT to all at once, SIGTERM for what lingers."""
    import signal

    from vega_ros.demo import NodeProcess, stop_all

    stubborn = "import signal, sys, time; signal.signal(signal.SIGINT, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    polite = "import sys, time; print('up', flush=True); time.sleep(60)"
    procs = [NodeProcess("stubborn", "stubborn"), NodeProcess("polite", "polite")]
    for p, code in zip(procs, (stubborn, polite)):
        p.proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert p.proc.stdout.readline().strip() == "up"  # its SIGINT handler is in place
    stop_all(procs, timeout=3.0)  # long enough for the polite one to exit on SIGINT on a loaded machine (0.5 s was not)
    assert procs[0].proc.returncode == -signal.SIGTERM  # ignored SIGINT, ended by SIGTERM
    assert procs[1].proc.returncode not in (None, -signal.SIGTERM, -signal.SIGKILL)  # SIGINT ended it
    stop_all(procs)  # stopping stopped processes is a no-op
