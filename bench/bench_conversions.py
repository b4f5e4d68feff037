"""Benchmark: building 640x480 PointCloud2 (xyz + rgb) and 32FC1 Image messages from numpy.

Prints the median build time of the vectorised converters in vega_ros.conversions and the
ratio against a per-point Python loop (struct.pack_into, the way naive nodes do it), both
measured here in the same run.

    .venv/bin/python bench/bench_conversions.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import array
import statistics
import struct
import time

import numpy as np
from sensor_msgs.msg import Image, PointCloud2

from vega_ros import conversions, geometry

H, W = 480, 640


def median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def loop_pointcloud(points: np.ndarray, rgb: np.ndarray) -> PointCloud2:
    """Baseline: one struct.pack_into per point."""
    n = points.shape[0]
    buf = bytearray(16 * n)
    pts, cols = points.tolist(), rgb.tolist()
    for i in range(n):
        r, g, b = cols[i]
        struct.pack_into("<fffI", buf, 16 * i, pts[i][0], pts[i][1], pts[i][2], (r << 16) | (g << 8) | b)
    msg = conversions.points_to_pointcloud2(points[:1], rgb[:1])  # fields / header layout
    msg.width, msg.row_step = n, 16 * n
    msg.data = array.array("B", buf)
    return msg


def loop_depth_image(depth: np.ndarray) -> Image:
    """Baseline: one struct.pack_into per pixel."""
    h, w = depth.shape
    buf = bytearray(4 * h * w)
    rows = depth.tolist()
    for i in range(h):
        for j in range(w):
            struct.pack_into("<f", buf, 4 * (i * w + j), rows[i][j])
    return Image(height=h, width=w, encoding="32FC1", step=4 * w, data=array.array("B", buf))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--loop-repeats", type=int, default=3)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    depth = rng.uniform(0.3, 4.0, (H, W)).astype(np.float32)
    K = geometry.intrinsics_from_fov(W, H, 60.0)
    points = geometry.depth_to_points(depth, K).reshape(-1, 3)
    rgb = rng.integers(0, 256, (H * W, 3), dtype=np.uint8)
    header = conversions.make_header(0.0, "camera_optical")

    fast_cloud = conversions.points_to_pointcloud2(points, rgb, header)
    assert bytes(fast_cloud.data) == bytes(loop_pointcloud(points, rgb).data), "the two clouds must be byte-identical"
    assert bytes(conversions.depth_m_to_image(depth).data) == bytes(loop_depth_image(depth).data)

    rows = []
    for name, fast, slow in [
        ("PointCloud2 xyz+rgb 640x480", lambda: conversions.points_to_pointcloud2(points, rgb, header), lambda: loop_pointcloud(points, rgb)),
        ("Image 32FC1 640x480", lambda: conversions.depth_m_to_image(depth, header), lambda: loop_depth_image(depth)),
    ]:
        t_fast = median_ms(fast, args.repeats)
        t_slow = median_ms(slow, args.loop_repeats)
        rows.append((name, t_fast, t_slow, t_slow / t_fast))
    print(f"{'message':<30} {'vectorised ms (median)':>23} {'python loop ms':>15} {'speed-up':>9}")
    for name, t_fast, t_slow, ratio in rows:
        print(f"{name:<30} {t_fast:>23.2f} {t_slow:>15.1f} {ratio:>8.0f}x")


if __name__ == "__main__":
    main()
