"""Rendered depth, K and T_wc against MuJoCo ray casts: an independent check of the whole camera model.

For random pixels, a ray through the pixel centre (half-pixel convention) is cast with
``mujoco.mj_ray`` from the camera position; its hit distance along the optical axis must equal the
rendered z-depth there. This catches flipped rows, a wrong principal point, MuJoCo-vs-OpenCV axes,
depth linearisation and MSAA blending at once. Non-square images catch swapped H / W.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from distill.data.libero_scene import LiberoScene
from distill.data.offscreen import RenderError
from distill.data.scenes import load_init_states, suite_tasks
from vega_ros.geometry import look_at

W, H = 80, 60


@pytest.fixture(scope="module")
def scene():
    task = suite_tasks("libero_spatial")[0]
    sc = LiberoScene(task, W, H, rgb_msaa=True, layout_seed=0)
    sc.set_state(load_init_states(task)[0])
    yield sc
    sc.close()


def _raycast_depth(scene: LiberoScene, K: np.ndarray, T_wc: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    groups = np.zeros(6, np.uint8)
    groups[[1, 2]] = 1  # what the renderer draws
    out = np.zeros(len(rows))
    geom = np.zeros(1, np.int32)
    for n, (i, j) in enumerate(zip(rows, cols)):
        d_cam = np.linalg.solve(K, [j + 0.5, i + 0.5, 1.0])
        d_cam /= np.linalg.norm(d_cam)
        t = mujoco.mj_ray(scene.model, scene.data, T_wc[:3, 3], T_wc[:3, :3] @ d_cam, groups, 1, -1, geom)
        out[n] = t * d_cam[2] if t >= 0 else 0.0
    return out


def _check_against_rays(scene, camera_id):
    rgb, depth, K, T_wc = scene.render(camera_id)
    assert rgb.shape == (H, W, 3) and depth.shape == (H, W)
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, H, 300), rng.integers(0, W, 300)
    ray = _raycast_depth(scene, K, T_wc, rows, cols)
    both = (ray > 0) & (depth[rows, cols] > 0)
    assert both.mean() > 0.9
    err = np.abs(ray[both] - depth[rows, cols][both])
    assert np.median(err) < 2e-4, f"median |render - ray| = {np.median(err) * 1e3:.3f} mm"
    assert np.mean(err < 1e-3) > 0.9  # the rest are silhouette pixels


def test_free_camera_depth_matches_ray_casts(scene):
    target = scene.object_centroid()
    T_wc = look_at(target + np.array([0.5, -0.6, 0.5]), target)
    scene.pose_free_camera(T_wc, 55.0)
    K, T_back = scene.camera_pose(scene.free_camera_id)
    np.testing.assert_allclose(T_back, T_wc, atol=1e-9)
    np.testing.assert_allclose(K[1, 1], 0.5 * H / np.tan(np.deg2rad(55.0) / 2))
    _check_against_rays(scene, scene.free_camera_id)


def test_wrist_camera_depth_matches_ray_casts(scene):
    scene.set_arm_qpos(scene.arm_qpos + 0.1)
    _check_against_rays(scene, scene.camera_id("robot0_eye_in_hand"))


def test_empty_frame_raises(scene):
    """A frame with nothing drawn (every geom group hidden) is an error, not a silent blank."""
    saved = scene.renderer.option.geomgroup.copy()
    scene.renderer.option.geomgroup[:] = 0
    try:
        with pytest.raises(RenderError, match="no geometry"):
            scene.render(scene.camera_id("agentview"))
    finally:
        scene.renderer.option.geomgroup[:] = saved


def test_render_survives_another_context_being_freed(scene):
    """Freeing some other GL context (as robosuite does late after a hard reset) must not blank our renders."""
    from mujoco import gl_context

    cam = scene.camera_id("agentview")
    rgb0, depth0, _, _ = scene.render(cam)
    other = gl_context.GLContext(32, 32)
    other.make_current()
    other.free()
    rgb1, depth1, _, _ = scene.render(cam)
    np.testing.assert_array_equal(depth1, depth0)
    np.testing.assert_array_equal(rgb1, rgb0)
