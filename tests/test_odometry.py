"""Visual odometry: pure geometry against hand-computed answers, PnP / window refinement on exact
data, and the tracker end to end on an exactly rendered sequence (true depth, noisy depth, loss)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.fixtures.vo_scene import TexturedRoom, arc_path
from vega_ros import geometry
from vega_ros.odometry import OdometrySettings, TrackStatus, VisualOdometry, window
from vega_ros.odometry import pose_math as pm
from vega_ros.odometry.features import detect_corners, track_lk
from vega_ros.odometry.metrics import ate_percent, ate_rmse_m, path_length_m, relative_pose_auc30
from vega_ros.odometry.pnp import solve_pnp
from vega_ros.odometry.window import refine_window, window_residuals

K = np.array([[100.0, 0.0, 50.0], [0.0, 100.0, 40.0], [0.0, 0.0, 1.0]])


# ----------------------------------------------------------------------------- pose_math


def test_opencv_and_half_pixel_coordinates_differ_by_half_a_pixel():
    assert np.allclose(pm.cv_to_uv([[0.0, 0.0], [3.0, 4.0]]), [[0.5, 0.5], [3.5, 4.5]])
    assert np.allclose(pm.uv_to_cv(pm.cv_to_uv([[1.25, 7.0]])), [[1.25, 7.0]])


def test_so3_exp_and_log_known_answers():
    R = pm.so3_exp([0.0, 0.0, np.pi / 2])
    assert np.allclose(R, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    assert np.allclose(pm.so3_log(R), [0, 0, np.pi / 2])
    x = np.array([0.1, -0.2, 0.3, 1.0, 2.0, -3.0])
    assert np.allclose(pm.pose_to_vector(pm.pose_from_vector(x)), x)


def test_backproject_known_answer_and_round_trip():
    X = pm.backproject([[60.0, 40.0], [50.0, 60.0]], [2.0, 4.0], K)
    assert np.allclose(X, [[0.2, 0.0, 2.0], [0.0, 0.8, 4.0]])
    uv, z = geometry.project_points(X, K)
    assert np.allclose(uv, [[60.0, 40.0], [50.0, 60.0]]) and np.allclose(z, [2.0, 4.0])


def test_sample_depth_takes_the_median_around_the_containing_pixel_and_refuses_edges_and_borders():
    depth = np.full((10, 10), 2.0, np.float32)
    depth[4, 4] = 2.05  # noise inside the tolerance: the median ignores it
    depth[3, 5] = depth[3, 6] = depth[3, 7] = depth[4, 5] = depth[4, 6] = 2.04  # most of the pixels around (row 4, col 6)
    depth[:, 8:] = 5.0  # a depth edge between columns 7 and 8
    z = pm.sample_depth(depth, [[4.9, 4.1], [6.5, 4.5], [7.5, 5.5], [0.5, 5.5], [30.0, 3.0]], 0.05, 20.0, 0.05)
    assert z[0] == pytest.approx(2.0) and z[1] == pytest.approx(2.04)
    assert np.isnan(z[2]) and np.isnan(z[3]) and np.isnan(z[4])  # edge, border, outside
    depth[2, 2] = 0.0  # an invalid neighbour
    assert np.isnan(pm.sample_depth(depth, [[3.5, 3.5]], 0.05, 20.0, 0.05)[0])


def _random_points(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.c_[rng.uniform(-1, 1, (n, 2)), rng.uniform(2, 4, n)]


def test_pnp_covariance_shrinks_with_points_and_grows_with_residuals():
    T_wc = geometry.make_transform(pm.so3_exp([0.0, 0.1, 0.0]), [0.3, 0.0, 0.1])
    pts_c = _random_points(400)
    pts_w = geometry.transform_points(T_wc, pts_c)
    uv, _ = geometry.project_points(pts_c, K)
    cov_400, sigma = pm.pnp_covariance_world(T_wc, pts_w, uv, K, min_pixel_sigma=0.5)
    cov_40, _ = pm.pnp_covariance_world(T_wc, pts_w[:40], uv[:40], K, min_pixel_sigma=0.5)
    assert sigma == pytest.approx(0.5)  # exact data: the floor
    assert np.allclose(cov_400, cov_400.T) and np.all(np.linalg.eigvalsh(cov_400) > 0)
    assert np.trace(cov_40) > 5 * np.trace(cov_400)
    noisy = uv + np.random.default_rng(1).normal(0, 2.0, uv.shape)
    cov_noisy, sigma_noisy = pm.pnp_covariance_world(T_wc, pts_w, noisy, K, min_pixel_sigma=0.5)
    assert sigma_noisy == pytest.approx(2.0, rel=0.15)
    assert np.trace(cov_noisy) == pytest.approx(np.trace(cov_400) * (sigma_noisy / 0.5) ** 2, rel=1e-3)


def test_pnp_covariance_uses_the_jacobian_of_the_world_frame_perturbation():
    """Against central differences of the residuals under ``p + dp``, ``exp(dphi) R`` (the layout's meaning)."""
    T_wc = geometry.make_transform(pm.so3_exp([0.2, -0.1, 0.3]), [0.3, -0.2, 0.1])
    pts_w = geometry.transform_points(T_wc, _random_points(60))
    uv = geometry.project_points(geometry.transform_points(geometry.se3_inverse(T_wc), pts_w), K)[0]
    uv = uv + np.random.default_rng(7).normal(0, 1.0, uv.shape)

    def residuals(delta: np.ndarray) -> np.ndarray:
        T = T_wc.copy()
        T[:3, 3] += delta[:3]
        T[:3, :3] = pm.so3_exp(delta[3:]) @ T_wc[:3, :3]
        uv_hat, _ = geometry.project_points(geometry.transform_points(geometry.se3_inverse(T), pts_w), K)
        return (uv_hat - uv).ravel()

    eps = 1e-6
    J = np.stack([(residuals(e) - residuals(-e)) / (2 * eps) for e in np.eye(6) * eps], axis=1)
    r0 = residuals(np.zeros(6))
    expected = (r0 @ r0) / (len(r0) - 6) * np.linalg.inv(J.T @ J)
    cov, sigma = pm.pnp_covariance_world(T_wc, pts_w, uv, K, min_pixel_sigma=0.1)
    assert np.allclose(cov, expected, rtol=1e-4, atol=1e-12) and sigma == pytest.approx(np.sqrt(r0 @ r0 / (len(r0) - 6)))


def test_diagonal_covariance_and_pose_step():
    assert np.allclose(np.diag(pm.diagonal_covariance(2.0, 180.0)), [4, 4, 4, np.pi**2, np.pi**2, np.pi**2])
    T_b = geometry.make_transform(pm.so3_exp([0, 0, np.deg2rad(10)]), [0.3, 0.4, 0.0])
    dt, dr = pm.pose_step(np.eye(4), T_b)
    assert dt == pytest.approx(0.5) and dr == pytest.approx(10.0)


# ----------------------------------------------------------------------------- metrics


def test_ate_without_alignment_and_path_length():
    T = np.stack([geometry.make_transform(np.eye(3), [x, 0.0, 0.0]) for x in (0.0, 1.0, 2.0)])
    assert path_length_m(T) == pytest.approx(2.0)
    assert ate_rmse_m(T, T) == 0.0
    scaled = T.copy()
    scaled[:, :3, 3] *= 1.5  # a scale error is not aligned away: errors 0, 0.5, 1.0
    assert ate_rmse_m(scaled, T) == pytest.approx(np.sqrt((0.25 + 1.0) / 3))
    assert ate_percent(scaled, T) == pytest.approx(100 * np.sqrt((0.25 + 1.0) / 3) / 2.0)
    moved = geometry.make_transform(pm.so3_exp([0, 0, 1.0]), [5.0, 1.0, 0.0])[None] @ T  # another world frame
    assert ate_rmse_m(moved, T) == pytest.approx(0.0, abs=1e-12)
    assert relative_pose_auc30(T, T) == 1.0


def test_fuse_depth_is_a_weighted_geometric_mean_and_keeps_whichever_exists():
    z, w = pm.fuse_depth([1.0, np.nan, 2.0, np.nan, 8.0], [3, 0, 1, 0, 9], [4.0, 3.0, np.nan, np.nan, 1.0], max_weight=3)
    assert np.allclose(z[:3], [4.0 ** 0.25, 3.0, 2.0])  # (1^3 * 4)^(1/4); new only; map only
    assert np.isnan(z[3]) and np.allclose(w, [4, 1, 1, 0, 4])
    assert np.isclose(z[4], (8.0 ** 3 * 1.0) ** 0.25)  # the map's weight 9 is capped at 3


# ----------------------------------------------------------------------------- PnP and the window


def test_pnp_recovers_an_exact_pose_despite_outliers():
    s = OdometrySettings()
    T_ck = geometry.make_transform(pm.so3_exp([0.05, -0.1, 0.02]), [0.1, -0.05, 0.2])
    pts_k = _random_points(200)
    uv, _ = geometry.project_points(geometry.transform_points(T_ck, pts_k), K)
    uv[:50] += np.random.default_rng(2).uniform(10, 30, (50, 2))
    res = solve_pnp(pts_k, uv, K, s)
    assert res is not None and np.allclose(res.T_ck, T_ck, atol=1e-6)
    assert set(res.inliers.tolist()) == set(range(50, 200)) and res.rms_px < 1e-4
    assert solve_pnp(pts_k[:5], uv[:5], K, s) is None  # too few matches


def _window_problem(depth_of=lambda z: z, baseline_m: float = 0.1, yaw_rad: float = 0.05, z_m=(3.0, 5.0), half_width_m=1.0):
    """Three keyframes ``baseline_m`` apart along x, each turned by ``yaw_rad`` more, seeing 150 points at
    z in ``z_m``, every pixel exact; each keyframe's depth map measures the points' z-depth as ``depth_of(true z)``.
    Landmarks are hosted in keyframe 0 (the rays through its exact pixels), starting at its measured depth.
    ``start`` perturbs keyframes 1 and 2."""
    T_wc = np.stack([geometry.make_transform(pm.so3_exp([0, yaw_rad * k, 0]), [baseline_m * k, 0.0, 0.0]) for k in range(3)])
    world = np.c_[np.random.default_rng(3).uniform(-half_width_m, half_width_m, (150, 2)),
                  np.random.default_rng(4).uniform(*z_m, 150)]
    cam = [geometry.transform_points(geometry.se3_inverse(T), world) for T in T_wc]
    uv = [geometry.project_points(c, K)[0] for c in cam]
    n = len(world)
    lm = np.arange(n)
    problem = window.WindowProblem(
        host=np.zeros(n, int), ray=pm.backproject(uv[0], np.ones(n), K), log_z=np.log(depth_of(cam[0][:, 2])),
        obs_landmark=np.tile(lm, 2), obs_keyframe=np.repeat([1, 2], n), obs_uv=np.concatenate([uv[1], uv[2]]),
        depth_landmark=np.tile(lm, 3), depth_keyframe=np.repeat([0, 1, 2], n),
        depth_log_z=np.log(np.concatenate([depth_of(c[:, 2]) for c in cam])))
    start = T_wc.copy()
    start[1:, :3, 3] += [0.01, -0.02, 0.015]
    start[2, :3, :3] = pm.so3_exp([0.01, 0.0, 0.0]) @ start[2, :3, :3]
    return T_wc, problem, start, np.log(cam[0][:, 2])


def test_window_adjustment_pulls_perturbed_keyframes_and_depths_back():
    T_wc, problem, start, true_log_z = _window_problem()
    assert np.allclose(window_residuals(T_wc, problem, K, 0.15), 0.0, atol=1e-9)
    off = dataclasses.replace(problem, log_z=true_log_z + np.random.default_rng(6).normal(0, 0.05, len(true_log_z)))
    refined, log_z = refine_window(start, off, K, depth_sigma_log=0.15, huber_px=1.0, max_iterations=30)
    assert np.allclose(refined[0], start[0])  # the anchor does not move
    assert np.allclose(refined, T_wc, atol=1e-5) and np.allclose(log_z, true_log_z, atol=1e-5)


def test_window_jacobian_matches_finite_differences():
    T_wc, problem, start, _ = _window_problem(depth_of=lambda z: 0.9 * z)
    log_z = problem.log_z + 0.03
    rows = window._linearise(start, log_z, problem, K, depth_weight=4.0)
    eps = 1e-6
    for col in range(rows.Jp.shape[1]):
        delta = np.zeros(rows.Jp.shape[1])
        delta[col] = eps
        moved = window._linearise(window._retract(start, delta), log_z, problem, K, 4.0, with_jacobian=False)
        assert np.allclose((moved.r - rows.r) / eps, rows.Jp[:, col], rtol=1e-3, atol=1e-3), f"pose column {col}"
    d = np.zeros(len(log_z))
    d[[0, 7]] = eps  # two landmarks: each row sees only its own
    moved = window._linearise(start, log_z + d, problem, K, 4.0, with_jacobian=False)
    expected = np.where(np.isin(rows.lm, [0, 7]), rows.Js, 0.0)
    assert np.allclose((moved.r - rows.r) / eps, expected, rtol=1e-3, atol=1e-3)


def test_window_adjustment_corrects_depth_maps_that_are_too_flat():
    """Depth maps right on average but with half the true relief (what a weak student predicts), seen from
    three converging views of a table-top scene: the views' parallax pulls the landmarks towards their true
    depths. Not all the way (the bas-relief ambiguity: flatter relief and another motion explain the pixels
    almost as well), but the views then agree, where trusting the maps leaves pixels off."""
    z_m = (0.8, 1.6)
    mean = np.mean(np.log(z_m))
    T_wc, problem, _, true_log_z = _window_problem(depth_of=lambda z: np.exp(mean + 0.5 * (np.log(z) - mean)),
                                                   baseline_m=0.25, yaw_rad=-0.15, z_m=z_m, half_width_m=0.4)

    def depth_error(log_z: np.ndarray) -> float:
        return float(np.sqrt(np.mean((log_z - true_log_z) ** 2)))

    def pose_error(T: np.ndarray) -> float:
        return float(np.abs(T[:, :3, 3] - T_wc[:, :3, 3]).max())

    def pixel_error(T: np.ndarray, log_z: np.ndarray) -> float:
        return float(np.mean(np.abs(window_residuals(T, problem, K, 0.15, log_z)[:2 * len(problem.obs_uv)])))

    T, log_z = refine_window(T_wc, problem, K, depth_sigma_log=0.15, huber_px=1.0, max_iterations=30)
    T_stiff, z_stiff = refine_window(T_wc, problem, K, depth_sigma_log=0.01, huber_px=1.0, max_iterations=30)
    assert depth_error(log_z) < 0.75 * depth_error(problem.log_z)
    assert depth_error(z_stiff) > 0.95 * depth_error(problem.log_z)  # trusting the maps keeps their shape
    assert pixel_error(T, log_z) < 0.2 * pixel_error(T_stiff, z_stiff)
    assert pose_error(T) < pose_error(T_stiff)


def test_window_adjustment_shrugs_off_outlier_tracks():
    T_wc, problem, start, _ = _window_problem()
    rng = np.random.default_rng(5)
    jump = rng.random((len(problem.obs_uv), 1)) < 0.15  # 15 % of the observations land on a wrong pixel
    bad = dataclasses.replace(problem, obs_uv=problem.obs_uv + np.where(jump, rng.uniform(-40, 40, problem.obs_uv.shape), 0.0))

    def error_m(T: np.ndarray) -> float:
        return float(np.abs(T[1:, :3, 3] - T_wc[1:, :3, 3]).max())

    robust, _ = refine_window(start, bad, K, 0.15, huber_px=1.0, max_iterations=30)
    plain, _ = refine_window(start, bad, K, 0.15, huber_px=1e6, max_iterations=30)  # Huber this wide = least squares
    assert error_m(robust) < 0.15 * error_m(start) and error_m(robust) < 0.5 * error_m(plain)
    T_one, z_one = refine_window(start[:1], bad, K, 0.15, 1.0, 10)  # nothing free to refine
    assert np.allclose(T_one, start[:1]) and np.array_equal(z_one, bad.log_z)


# ----------------------------------------------------------------------------- features


def test_corners_are_spread_and_tracks_follow_a_known_shift():
    s = OdometrySettings()
    scene = TexturedRoom()
    gray, _ = scene.render(arc_path(1)[0])
    uv = detect_corners(gray, np.zeros((0, 2)), 100, s)
    assert 50 <= len(uv) <= 100
    d = np.linalg.norm(uv[:, None] - uv[None], axis=-1) + np.eye(len(uv)) * 1e9
    assert d.min() >= s.min_feature_distance_px
    assert np.allclose(uv % 1.0, 0.5)  # on pixel centres
    cols = (uv[:, 0] * s.grid_cols / gray.shape[1]).astype(int)
    assert len(np.unique(cols)) == s.grid_cols  # every column of the grid has corners
    shifted = np.roll(gray, (2, 3), axis=(0, 1))  # content moves 3 px right, 2 px down
    tracked, ok = track_lk(gray, shifted, uv, s)
    inner = ok & (uv[:, 0] > 15) & (uv[:, 1] > 15)
    assert inner.sum() > 0.8 * (uv[:, 0] > 15).sum() * 0.5
    assert np.allclose(tracked[inner] - uv[inner], [3.0, 2.0], atol=0.05)
    assert not np.any(track_lk(gray, np.zeros_like(gray), uv, s)[1] & (uv[:, 0] > 30))  # nothing to track into


# ----------------------------------------------------------------------------- the tracker end to end


@pytest.fixture(scope="module")
def sequence():
    scene = TexturedRoom()
    poses = arc_path(60)
    frames = [scene.render(T) for T in poses]
    return scene.K, poses, frames


def _run(vo, K, frames, depth_fn=lambda d, k: d, priors=None):
    out = []
    for k, (gray, depth) in enumerate(frames):
        out.append(vo.track(gray, depth_fn(depth, k), K, 0.1 * k, None if priors is None else priors[k]))
    return out


def test_true_depth_recovers_the_trajectory_within_one_percent(sequence):
    K, poses, frames = sequence
    vo = VisualOdometry(OdometrySettings())
    res = _run(vo, K, frames)
    est = np.stack([r.T_wc for r in res])
    assert res[0].status is TrackStatus.INITIALISING and res[0].keyframe and np.allclose(res[0].T_wc, np.eye(4))
    assert all(r.status is TrackStatus.TRACKING for r in res[1:])
    assert ate_percent(est, poses) < 1.0
    assert relative_pose_auc30(est, poses) > 0.95
    assert min(r.inliers for r in res[1:]) >= 50
    sig = np.sqrt(np.stack([np.diag(r.covariance) for r in res[1:]]))
    assert np.all(sig > 0) and np.all(sig[:, :3] < 0.05)
    assert sig[-1, 0] > sig[0, 0]  # uncertainty accumulates over keyframes
    assert vo.counters.keyframes >= 2 and vo.counters.losses == 0 and vo.counters.window_refinements >= 1


def test_noisy_depth_still_tracks(sequence):
    K, poses, frames = sequence
    rng = np.random.default_rng(5)
    vo = VisualOdometry(OdometrySettings())
    res = _run(vo, K, frames, lambda d, k: (d * (1 + 0.05 * rng.standard_normal(d.shape))).astype(np.float32))
    est = np.stack([r.T_wc for r in res])
    assert vo.counters.losses == 0
    assert ate_percent(est, poses) < 3.0
    assert relative_pose_auc30(est, poses) > 0.8


def test_bundle_adjustment_recovers_part_of_the_motion_that_flat_depth_hides(sequence):
    """Depth maps with half the true relief around each frame's median (a weak student's failure): PnP on
    them under-estimates the motion; the window's bundle adjustment lets the views reshape the keyframes'
    points, and the trajectory comes out closer to the truth than with the depth maps taken as they are."""
    K, poses, frames = sequence

    def flat(depth: np.ndarray, k: int) -> np.ndarray:
        ok = depth > 0
        mid = np.median(np.log(depth[ok]))
        out = depth.copy()
        out[ok] = np.exp(mid + 0.5 * (np.log(depth[ok]) - mid))
        return out.astype(np.float32)

    def ate(**settings) -> float:
        res = _run(VisualOdometry(OdometrySettings(**settings)), K, frames, flat)
        return ate_percent(np.stack([r.T_wc for r in res]), poses)

    assert ate() < 0.8 * ate(window_keyframes=0)


def test_black_frames_lose_tracking_then_recover_at_the_last_good_pose(sequence):
    K, poses, frames = sequence
    frames = [(np.zeros_like(g), np.zeros_like(d)) if 20 <= k < 25 else (g, d) for k, (g, d) in enumerate(frames[:40])]
    vo = VisualOdometry(OdometrySettings())
    res = _run(vo, K, frames)
    status = [r.status for r in res]
    assert status[20:25] == [TrackStatus.LOST] * 5 and status[25] is TrackStatus.RECOVERED and res[25].keyframe
    assert all(s is TrackStatus.TRACKING for s in status[26:])
    assert np.allclose(res[25].T_wc, res[19].T_wc) and np.allclose(res[22].T_wc, res[19].T_wc)
    assert np.sqrt(res[22].covariance[0, 0]) == pytest.approx(OdometrySettings().lost_sigma_m)
    assert vo.counters.losses == 1 and vo.counters.recoveries == 1
    # after recovery the motion is tracked again: relative poses over frames 25..39 match the truth
    est_rel = geometry.relative_pose(res[25].T_wc, res[39].T_wc)
    true_rel = geometry.relative_pose(poses[25], poses[39])
    assert np.linalg.norm(est_rel[:3, 3] - true_rel[:3, 3]) < 0.01


def test_the_prior_stands_in_for_a_failed_pnp_then_tracking_is_lost(sequence):
    K, poses, frames = sequence
    s = OdometrySettings(max_prior_frames=2)
    frames = [(np.zeros_like(g), d) if k >= 10 else (g, d) for k, (g, d) in enumerate(frames[:15])]
    vo = VisualOdometry(s)
    res = []
    for k, (gray, depth) in enumerate(frames):
        kf = vo.keyframe_T_wc
        prior = None
        if kf is not None:  # the exact current-from-keyframe pose in the odometry's own world
            T_wc_true = geometry.relative_pose(poses[0], poses[k])
            prior = geometry.relative_pose(T_wc_true, kf)
        res.append(vo.track(gray, depth, K, 0.1 * k, prior))
    assert [r.status for r in res[10:15]][:2] == [TrackStatus.TRACKING] * 2 and res[10].inliers == 0
    assert np.allclose(res[10].T_wc, geometry.relative_pose(poses[0], poses[10]), atol=1e-3)
    assert res[12].status is TrackStatus.LOST and vo.counters.prior_fallbacks == 2
    assert res[10].covariance[0, 0] > res[9].covariance[0, 0]


def test_a_stamp_going_back_resets_and_bad_input_is_named(sequence):
    K, _, frames = sequence
    vo = VisualOdometry(OdometrySettings())
    _run(vo, K, frames[:3])
    r = vo.track(*frames[3], K, stamp_s=0.0)
    assert r.status is TrackStatus.INITIALISING and np.allclose(r.T_wc, np.eye(4))
    gray, depth = frames[0]
    with pytest.raises(ValueError, match="gray"):
        vo.track(gray.astype(np.float32), depth, K, 1.0)
    with pytest.raises(ValueError, match="depth"):
        vo.track(gray, depth[:-1], K, 1.0)
    with pytest.raises(ValueError, match="K"):
        vo.track(gray, depth, np.eye(2), 1.0)
    with pytest.raises(ValueError, match="prior_T_ck"):
        vo.track(gray, depth, K, 1.0, prior_T_ck=np.eye(3))


def test_settings_are_validated_by_name():
    with pytest.raises(ValueError, match="fb_max_error_px"):
        OdometrySettings(fb_max_error_px=-1.0)
    with pytest.raises(ValueError, match="lk_window_px"):
        OdometrySettings(lk_window_px=10)
    with pytest.raises(ValueError, match="min_pnp_inliers"):
        OdometrySettings(min_pnp_inliers=4)
    with pytest.raises(ValueError, match="window_depth_sigma_log"):
        OdometrySettings(window_depth_sigma_log=0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        OdometrySettings().max_features = 3
    with pytest.raises(TypeError, match="OdometrySettings"):
        VisualOdometry({"max_features": 10})


# ----------------------------------------------------------------------------- the trajectory plot


def test_trajectory_plot_anchors_the_estimate_at_the_first_true_pose_and_draws_both():
    from vega_ros.trajectory_plot import EST_BGR, TRUE_BGR, anchor_to_first, plot_trajectories

    true = arc_path(20)
    est = geometry.se3_inverse(true[0])[None] @ true  # the same path in the odometry's own world
    assert np.allclose(anchor_to_first(est, true), true)
    est_off = est.copy()
    est_off[:, 0, 3] *= 1.5
    img = plot_trajectories(est_off, true, "caption", size=300)
    assert img.shape == (340, 600, 3) and img.dtype == np.uint8
    for colour in (TRUE_BGR, EST_BGR):
        assert np.sum(np.all(img == colour, axis=-1)) > 50
    with pytest.raises(ValueError, match="plot_trajectories"):
        plot_trajectories(est[:1], true[:1])
