"""vega_ros.geometry against hand-computed answers and with hypothesis properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vega_ros import geometry as g


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    return g.quat_to_matrix(q)


def random_transform(rng: np.random.Generator, scale: float = 2.0) -> np.ndarray:
    return g.make_transform(random_rotation(rng), rng.uniform(-scale, scale, 3))


quats = arrays(np.float64, 4, elements=st.floats(-1, 1, allow_nan=False)).filter(lambda q: np.linalg.norm(q) > 0.1)
vec3 = arrays(np.float64, 3, elements=st.floats(-5, 5, allow_nan=False))


# ----------------------------------------------------------------------------- intrinsics


def test_intrinsics_from_fov_known_answer():
    # 90° vertical fov on a 200-pixel-high image: fy = 100 / tan(45°) = 100.
    K = g.intrinsics_from_fov(320, 200, 90.0)
    np.testing.assert_allclose(K, [[100, 0, 160], [0, 100, 100], [0, 0, 1]], atol=1e-12)
    fx, fy = g.fov_from_intrinsics(K, 320, 200)
    assert np.isclose(np.rad2deg(fy), 90.0)
    assert np.isclose(np.rad2deg(fx), 2 * np.rad2deg(np.arctan(1.6)))


def test_intrinsics_rejects_bad_input():
    with pytest.raises(ValueError):
        g.intrinsics_from_fov(0, 10, 60)
    with pytest.raises(ValueError):
        g.intrinsics_from_fov(10, 10, 180)


def test_resize_and_crop_intrinsics_follow_the_pixel_centre_convention():
    K = g.intrinsics_from_fov(640, 480, 60.0)
    K2 = g.resize_intrinsics(K, (640, 480), (320, 240))
    # The principal point stays at the image centre under the half-pixel convention.
    assert K2[0, 2] == 160 and K2[1, 2] == 120
    assert np.isclose(K2[0, 0], K[0, 0] / 2)
    # A 3D point projects to the same *relative* image location after the resize.
    p = np.array([0.3, -0.2, 2.0])
    uv1, _ = g.project_points(p, K)
    uv2, _ = g.project_points(p, K2)
    np.testing.assert_allclose(uv2, uv1 / 2)
    Kc = g.crop_intrinsics(K, 100, 50)
    uv3, _ = g.project_points(p, Kc)
    np.testing.assert_allclose(uv3, uv1 - [100, 50])


# ----------------------------------------------------------------------------- projection


def test_depth_to_points_known_answer():
    K = np.array([[2.0, 0, 2.0], [0, 2.0, 1.0], [0, 0, 1]])  # 4x2 image
    depth = np.array([[1.0, 2.0, 0.0, 1.0], [1.0, 1.0, np.nan, 4.0]], np.float32)
    pts = g.depth_to_points(depth, K)
    # pixel (0, 0): centre (0.5, 0.5) -> x = (0.5 - 2) / 2 = -0.75, y = (0.5 - 1) / 2 = -0.25
    np.testing.assert_allclose(pts[0, 0], [-0.75, -0.25, 1.0])
    np.testing.assert_allclose(pts[0, 1], [2 * (1.5 - 2) / 2, 2 * -0.25, 2.0])
    np.testing.assert_array_equal(pts[0, 2], 0.0)  # zero depth
    np.testing.assert_array_equal(pts[1, 2], 0.0)  # NaN depth
    np.testing.assert_allclose(pts[1, 3], [4 * (3.5 - 2) / 2, 4 * (1.5 - 1) / 2, 4.0])


def test_backproject_then_project_is_identity_on_valid_pixels():
    rng = np.random.default_rng(0)
    K = g.intrinsics_from_fov(64, 48, 70.0)
    depth = rng.uniform(0.2, 5.0, (48, 64)).astype(np.float32)
    depth[rng.random(depth.shape) < 0.2] = 0
    pts = g.depth_to_points(depth, K)
    uv, z = g.project_points(pts, K)
    valid = g.valid_depth_mask(depth)
    u, v = g.pixel_grid(48, 64)
    np.testing.assert_allclose(uv[valid], np.stack([u, v], -1)[valid], atol=1e-4)
    np.testing.assert_allclose(z[valid], depth[valid], rtol=1e-6)
    rows, cols = np.nonzero(valid)
    np.testing.assert_array_equal(g.uv_to_pixel_index(uv[valid]), np.stack([rows, cols], -1))
    assert np.all(np.isnan(uv[~valid]))


@settings(max_examples=60, deadline=None)
@given(fov=st.floats(20, 120), depth=st.floats(0.05, 50), col=st.integers(0, 31), row=st.integers(0, 23))
def test_backproject_project_roundtrip_property(fov, depth, col, row):
    K = g.intrinsics_from_fov(32, 24, fov)
    d = np.zeros((24, 32), np.float32)
    d[row, col] = depth
    uv, z = g.project_points(g.depth_to_points(d, K)[row, col].astype(np.float64), K)
    np.testing.assert_allclose(uv, [col + 0.5, row + 0.5], atol=1e-3)
    assert np.isclose(z, depth, rtol=1e-6)


def test_depth_to_world_points_uses_T_wc_and_nans_invalid():
    K = g.intrinsics_from_fov(8, 6, 60.0)
    depth = np.full((6, 8), 2.0, np.float32)
    depth[0, 0] = 0
    T_wc = g.make_transform(g.axis_angle_to_matrix([0, 0, 1], np.pi / 2), [1.0, 2.0, 3.0])
    world = g.depth_to_world_points(depth, K, T_wc)
    cam = g.depth_to_points(depth, K)
    expected = cam @ T_wc[:3, :3].T + T_wc[:3, 3]
    np.testing.assert_allclose(world[1:], expected[1:], atol=1e-5)
    assert np.all(np.isnan(world[0, 0]))


# ----------------------------------------------------------------------------- SE(3) and quaternions


def test_quaternion_known_answers_ros_order():
    # 90° about z: (x, y, z, w) = (0, 0, sin 45°, cos 45°)
    R = g.quat_to_matrix([0, 0, np.sqrt(0.5), np.sqrt(0.5)])
    np.testing.assert_allclose(R, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(g.matrix_to_quat(np.eye(3)), [0, 0, 0, 1])
    # 180° about x exercises the non-w branch
    np.testing.assert_allclose(g.matrix_to_quat(np.diag([1.0, -1, -1])), [1, 0, 0, 0], atol=1e-12)
    with pytest.raises(ValueError):
        g.quat_to_matrix([0, 0, 0, 0])


@settings(max_examples=200, deadline=None)
@given(q=quats)
def test_quaternion_matrix_roundtrip(q):
    R = g.quat_to_matrix(q)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-9)
    assert np.isclose(np.linalg.det(R), 1.0)
    q2 = g.matrix_to_quat(R)
    qn = q / np.linalg.norm(q)
    qn = -qn if qn[3] < 0 else qn
    # q and -q are the same rotation; at w == 0 both signs are canonical
    assert np.allclose(q2, qn, atol=1e-7) or (abs(qn[3]) < 1e-7 and np.allclose(q2, -qn, atol=1e-7))


@settings(max_examples=100, deadline=None)
@given(q1=quats, t1=vec3, q2=quats, t2=vec3)
def test_inverse_after_compose_is_identity(q1, t1, q2, t2):
    A = g.make_transform(g.quat_to_matrix(q1), t1)
    B = g.make_transform(g.quat_to_matrix(q2), t2)
    AB = g.se3_compose(A, B)
    np.testing.assert_allclose(g.se3_compose(g.se3_inverse(AB), AB), np.eye(4), atol=1e-9)
    np.testing.assert_allclose(g.se3_inverse(AB), g.se3_compose(g.se3_inverse(B), g.se3_inverse(A)), atol=1e-9)
    np.testing.assert_allclose(g.relative_pose(A, AB), B, atol=1e-9)


def test_batched_se3():
    rng = np.random.default_rng(1)
    T = np.stack([random_transform(rng) for _ in range(5)])
    np.testing.assert_allclose(g.se3_inverse(T) @ T, np.broadcast_to(np.eye(4), (5, 4, 4)), atol=1e-9)


def test_look_at_points_z_at_target_and_y_down():
    T_wc = g.look_at([1.0, 0.0, 1.0], [0.0, 0.0, 0.0])
    target_cam = g.transform_points(g.se3_inverse(T_wc), np.zeros(3))
    np.testing.assert_allclose(target_cam, [0, 0, np.sqrt(2)], atol=1e-12)
    up_cam = T_wc[:3, :3].T @ np.array([0, 0, 1.0])
    assert up_cam[1] < 0  # world up is image-up, i.e. negative camera y


# ----------------------------------------------------------------------------- pose metrics


def test_rotation_and_translation_angles_known_answers():
    Rz = g.axis_angle_to_matrix([0, 0, 1], np.deg2rad(30))
    assert np.isclose(g.rotation_angle_deg(np.eye(3), Rz), 30)
    assert np.isclose(g.translation_angle_deg([1, 0, 0], [1, 1, 0]), 45)
    # sign ambiguity: opposite directions count as 0 under the protocol, 180 without it
    assert np.isclose(g.translation_angle_deg([1, 0, 0], [-2, 0, 0]), 0)
    assert np.isclose(g.translation_angle_deg([1, 0, 0], [-2, 0, 0], ambiguity=False), 180)
    assert g.translation_angle_deg([0, 0, 0], [1, 0, 0]) == 90


def test_pose_auc_known_answers():
    zeros = np.zeros(10)
    assert g.pose_auc(zeros, zeros, 30) == 1.0
    assert g.pose_auc(np.full(4, 45.0), np.zeros(4), 30) == 0.0
    # errors 0.5° and 10.5° (max of r and t): the first counts for all 30 thresholds, the second
    # from threshold 11 on: (30 + 20) / (2 * 30)
    assert np.isclose(g.pose_auc([0.5, 1.0], [0.0, 10.5], 30), 50 / 60)
    assert g.pose_auc([np.nan], [0.0], 30) == 0.0


def test_pairwise_errors_zero_for_same_trajectory_in_another_world():
    rng = np.random.default_rng(2)
    T_wc = np.stack([random_transform(rng) for _ in range(4)])
    W = random_transform(rng)  # the same cameras expressed in another world frame
    r, t = g.pairwise_relative_pose_errors(T_wc, W @ T_wc)
    assert r.shape == (12,)
    np.testing.assert_allclose(r, 0, atol=1e-5)
    np.testing.assert_allclose(t, 0, atol=1e-5)
    # a 10° rotation error on frame 3 shows up in the 6 pairs that involve it
    bad = T_wc.copy()
    bad[3, :3, :3] = bad[3, :3, :3] @ g.axis_angle_to_matrix([0, 1, 0], np.deg2rad(10))
    r, _ = g.pairwise_relative_pose_errors(bad, T_wc)
    assert np.sum(np.isclose(r, 10, atol=1e-5)) == 6 and np.sum(r < 1e-5) == 6


# ----------------------------------------------------------------------------- alignment


def test_umeyama_recovers_similarity():
    rng = np.random.default_rng(3)
    src = rng.normal(size=(100, 3))
    R = random_rotation(rng)
    dst = 2.5 * src @ R.T + [1.0, -2.0, 0.5]
    s, R_est, t = g.umeyama_alignment(src, dst)
    assert np.isclose(s, 2.5)
    np.testing.assert_allclose(R_est, R, atol=1e-9)
    np.testing.assert_allclose(t, [1.0, -2.0, 0.5], atol=1e-9)
    s1, R1, _ = g.umeyama_alignment(src, src @ R.T, with_scale=False)
    assert s1 == 1.0 and np.allclose(R1, R)
    with pytest.raises(ValueError):
        g.umeyama_alignment(src[:2], dst[:2])
    with pytest.raises(ValueError, match="no spread"):  # a path that never moved has no Sim(3) scale
        g.umeyama_alignment(np.zeros((5, 3)), dst[:5])


def test_umeyama_never_returns_a_reflection():
    rng = np.random.default_rng(4)
    src = rng.normal(size=(50, 3))
    dst = src * [1, 1, -1]  # a mirror image: the best rotation must still have det +1
    _, R, _ = g.umeyama_alignment(src, dst)
    assert np.isclose(np.linalg.det(R), 1.0)


def test_scale_alignment():
    src = np.array([[1.0, 2, 3], [4, 5, 6]])
    assert np.isclose(g.scale_alignment(src, 3 * src), 3)
    with pytest.raises(ValueError):
        g.scale_alignment(np.zeros(3), np.ones(3))


def test_pose_encoding_roundtrip():
    rng = np.random.default_rng(5)
    T = np.stack([random_transform(rng) for _ in range(3)])
    K = np.stack([g.intrinsics_from_fov(64, 48, f) for f in (40.0, 60.0, 90.0)])
    enc = g.pose_to_encoding(T, K, 48, 64)
    assert enc.shape == (3, g.POSE_ENCODING_DIM) and enc.dtype == np.float32
    assert np.isclose(enc[2, 7], np.pi / 2, atol=1e-6)  # fov_h of the 90° camera
    T2, K2 = g.encoding_to_pose(enc, 48, 64)
    np.testing.assert_allclose(T2, T, atol=1e-5)
    np.testing.assert_allclose(K2, K, rtol=1e-5)


def test_quat_to_axis_angle_known_answers():
    np.testing.assert_allclose(g.quat_to_axis_angle([0, 0, np.sin(0.25), np.cos(0.25)]), [0, 0, 0.5], atol=1e-12)
    np.testing.assert_allclose(g.quat_to_axis_angle([0, 0, 0, 1]), [0, 0, 0])
    # q and -q give the same rotation vector
    q = np.array([0.1, -0.3, 0.5, -0.8])
    np.testing.assert_allclose(g.quat_to_axis_angle(q), g.quat_to_axis_angle(-q))
    rv = g.quat_to_axis_angle(q)
    np.testing.assert_allclose(g.axis_angle_to_matrix(rv, np.linalg.norm(rv)), g.quat_to_matrix(q), atol=1e-12)


def test_axis_angle_to_quat_known_answers():
    np.testing.assert_allclose(g.axis_angle_to_quat([0, 0, 0.5]), [0, 0, np.sin(0.25), np.cos(0.25)], atol=1e-12)
    np.testing.assert_allclose(g.axis_angle_to_quat([0, 0, 0]), [0, 0, 0, 1])
    np.testing.assert_allclose(g.axis_angle_to_quat([np.pi, 0, 0]), [1, 0, 0, 0], atol=1e-12)  # LIBERO's gripper, pointing down


@given(quats)
def test_axis_angle_quat_roundtrip(q):
    """axis_angle_to_quat inverts quat_to_axis_angle up to the quaternion's sign (same rotation)."""
    back = g.axis_angle_to_quat(g.quat_to_axis_angle(q))
    np.testing.assert_allclose(g.quat_to_matrix(back), g.quat_to_matrix(q), atol=1e-9)
