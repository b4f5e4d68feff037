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
        depth = t.collect(Image, "/depth")
        clouds = t.collect(PointCloud2, "/points")
        assert t.spin_until(lambda: len(depth) >= 3 and len(clouds) >= 3, 90, [proc]), "no depth / cloud from the bringup nodes"
    finally:
        t.close()
        proc.send_signal(2)
        out, _ = proc.communicate(timeout=30)
    assert "--params-file" in out and "vega_ros.perception_node" in out and "vega_ros.sim_camera_node" in out
    assert depth[0].header.frame_id == "camera_optical" and depth[0].encoding == "32FC1"
    assert proc.returncode == 0, out[-2000:]
