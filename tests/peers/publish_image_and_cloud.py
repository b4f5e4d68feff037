"""Peer process for tests/test_dds_transport.py: publishes a seeded Image and PointCloud2.

Usage: python publish_image_and_cloud.py TOPIC_PREFIX SEED
Publishes `<prefix>/image` (rgb8) and `<prefix>/points` (xyz + rgb) every 50 ms until it is
terminated or 30 s pass. The arrays come from `fixture_arrays(seed)`, which the test recomputes.
"""

import sys
import time

import numpy as np
import rclpy
from sensor_msgs.msg import Image, PointCloud2

from vega_ros import conversions


def fixture_arrays(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rgb [48, 64, 3] uint8, points [500, 3] float32, colours [500, 3] uint8)."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    pts = rng.normal(size=(500, 3)).astype(np.float32)
    cols = rng.integers(0, 256, (500, 3), dtype=np.uint8)
    return rgb, pts, cols


def main() -> None:
    prefix, seed = sys.argv[1], int(sys.argv[2])
    rgb, pts, cols = fixture_arrays(seed)
    rclpy.init()
    node = rclpy.create_node("vega_test_publisher")
    pub_img = node.create_publisher(Image, f"{prefix}/image", 10)
    pub_pts = node.create_publisher(PointCloud2, f"{prefix}/points", 10)
    header = conversions.make_header(42.5, "camera_optical")
    img_msg = conversions.numpy_to_image(rgb, "rgb8", header)
    pts_msg = conversions.points_to_pointcloud2(pts, cols, header)
    deadline = time.monotonic() + 30.0
    try:
        while rclpy.ok() and time.monotonic() < deadline:
            pub_img.publish(img_msg)
            pub_pts.publish(pts_msg)
            time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
