"""An Image and a PointCloud2 cross a real DDS link between two processes byte for byte."""

import os
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image, PointCloud2

from tests.peers.publish_image_and_cloud import fixture_arrays
from vega_ros import conversions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.ros
def test_image_and_pointcloud_cross_processes_unchanged():
    prefix = f"/vega_test_{uuid.uuid4().hex[:8]}"
    seed = 7
    peer = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tests", "peers", "publish_image_and_cloud.py"), prefix, str(seed)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    received: dict[str, object] = {}
    rclpy.init()
    node = rclpy.create_node("vega_test_subscriber")
    try:
        node.create_subscription(Image, f"{prefix}/image", lambda m: received.setdefault("image", m), 10)
        node.create_subscription(PointCloud2, f"{prefix}/points", lambda m: received.setdefault("points", m), 10)
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        deadline = time.monotonic() + 30.0
        while len(received) < 2 and time.monotonic() < deadline and peer.poll() is None:
            executor.spin_once(timeout_sec=0.1)
        assert len(received) == 2, f"received only {sorted(received)} (peer exit code {peer.poll()})"
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        peer.terminate()
        peer.wait(timeout=10)

    rgb, pts, cols = fixture_arrays(seed)
    img = received["image"]
    assert img.header.frame_id == "camera_optical" and img.header.stamp.sec == 42
    assert bytes(img.data) == rgb.tobytes()
    np.testing.assert_array_equal(conversions.image_to_numpy(img), rgb)
    cloud = received["points"]
    expected = conversions.points_to_pointcloud2(pts, cols)
    assert bytes(cloud.data) == bytes(expected.data)
    p, c = conversions.pointcloud2_to_numpy(cloud)
    np.testing.assert_array_equal(p, pts)
    np.testing.assert_array_equal(c, cols)
