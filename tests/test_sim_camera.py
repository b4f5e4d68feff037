"""Simulated camera: exact synthetic geometry, camera paths, the node's topics, and (slow) the LIBERO scene."""

from __future__ import annotations

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import CameraInfo, Image

from tests.fixtures.ros_helpers import RosTestNode, node_process, stop, unique
from vega_ros import conversions, geometry
from vega_ros.sim_camera_node import CameraPath, SyntheticScene


def _on_some_surface(p: np.ndarray, tol: float = 1e-4) -> np.ndarray:
    on = np.abs(p[:, 2]) < tol
    for lo, hi, _ in SyntheticScene.BOXES:
        lo, hi = np.asarray(lo), np.asarray(hi)
        inside = np.all((p > lo - tol) & (p < hi + tol), axis=1)
        face = np.any((np.abs(p - lo) < tol) | (np.abs(p - hi) < tol), axis=1)
        on |= inside & face
    return on


def test_synthetic_depth_back_projects_onto_the_scene_surfaces():
    scene = SyntheticScene(96, 72, 60.0)
    path = CameraPath(scene.target, 0.4, radius=1.0, height=0.6)
    f = scene.render(path.T_wc(2.0))
    assert f.rgb.shape == (72, 96, 3) and f.depth.shape == (72, 96)
    valid = f.depth > 0
    assert valid.mean() > 0.9
    pts = geometry.depth_to_world_points(f.depth, f.K, f.T_wc)[valid]
    assert _on_some_surface(pts.astype(np.float64)).mean() > 0.999
    # some pixels see boxes, not only the floor
    assert (pts[:, 2] > 0.01).mean() > 0.05


def test_camera_path_looks_at_its_target_and_moves():
    target = np.array([0.1, -0.2, 0.8])
    path = CameraPath(target, 0.0, radius=1.0, height=0.5, period_s=8.0, arc_deg=90.0)
    for t in (0.0, 1.0, 2.5):
        T = path.T_wc(t)
        to_target = target - T[:3, 3]
        np.testing.assert_allclose(T[:3, 2], to_target / np.linalg.norm(to_target), atol=1e-9)
        assert abs(T[2, 3] - 1.3) < 1e-9
    np.testing.assert_allclose(np.linalg.norm(path.T_wc(2.0)[:2, 3] - target[:2]), 1.0, atol=1e-9)
    assert np.linalg.norm(path.T_wc(0.0)[:3, 3] - path.T_wc(2.0)[:3, 3]) > 0.5


@pytest.mark.ros
def test_node_publishes_image_info_and_ground_truth_with_one_stamp():
    ns = "/" + unique("cam")
    proc = node_process("vega_ros.sim_camera_node", unique("sim_camera"), ns,
                        params={"source": "synthetic", "width": 80, "height": 60, "rate_hz": 10.0, "max_frames": 8})
    t = RosTestNode(unique("cam_test"))
    try:
        imgs, infos = t.collect(Image, f"{ns}/image"), t.collect(CameraInfo, f"{ns}/camera_info")
        depths, poses = t.collect(Image, f"{ns}/ground_truth/depth"), t.collect(PoseStamped, f"{ns}/ground_truth/pose")
        assert t.spin_until(lambda: min(len(imgs), len(infos), len(depths), len(poses)) >= 3, 60, [proc])
        t.spin_for(1.5)
        n = len(imgs)
        t.spin_for(1.0)
        assert len(imgs) == n, "still publishing after max_frames"
    finally:
        t.close()
        stop(proc)
    assert 3 <= len(imgs) <= 8  # max_frames (the first ones may go out before discovery)
    for img, info, d, p in zip(imgs, infos, depths, poses):
        assert img.header.stamp == info.header.stamp == d.header.stamp == p.header.stamp
        assert img.encoding == "rgb8" and d.encoding == "32FC1" and p.header.frame_id == "world"
        K = conversions.camera_info_to_intrinsics(info).K
        assert K[0, 2] == 40.0 and K[1, 2] == 30.0
        scene = SyntheticScene(80, 60, 50.0)
        f = scene.render(conversions.pose_stamped_to_matrix(p))
        np.testing.assert_allclose(conversions.image_to_depth_m(d), f.depth, atol=1e-5)
        np.testing.assert_array_equal(conversions.image_to_rgb(img), f.rgb)


@pytest.mark.slow
def test_libero_scene_renders_upright_with_metric_depth_and_the_requested_pose():
    from vega_ros.sim_camera_node import LiberoScene

    scene = LiberoScene("libero_spatial", 0, "galleryview", 128, 128, 50.0, 0)
    try:
        path = CameraPath(scene.target, scene.start_azimuth)
        T = path.T_wc(3.0)
        f = scene.render(T)
    finally:
        scene.close()
    np.testing.assert_allclose(f.T_wc, T, atol=1e-6)
    assert f.rgb.std() > 10 and (f.depth > 0).mean() > 0.9
    # the camera looks down at the table: the bottom rows are nearer than the top rows (rows were flipped)
    assert np.median(f.depth[-20:][f.depth[-20:] > 0]) < np.median(f.depth[:20][f.depth[:20] > 0])
    # the look-at point is about `radius` away along the optical axis
    centre = f.depth[54:74, 54:74]
    assert 0.8 < np.median(centre[centre > 0]) < 1.6
