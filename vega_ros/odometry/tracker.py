"""VisualOdometry: frame-to-keyframe tracking on metric depth, keyframes, a refined window, loss and recovery.

Per frame (``track``):

1. Corners of the keyframe (FAST, bucketed) are tracked from the previous frame with pyramidal
   Lucas-Kanade and a forward-backward check, then re-aligned against the keyframe's own patch so
   that frame-to-frame errors do not pile up along a track (:mod:`vega_ros.odometry.features`).
2. The tracks whose keyframe pixel had trustworthy depth carry a 3D point in the keyframe's camera
   frame (back-projected with :mod:`vega_ros.geometry`'s half-pixel convention). ``solvePnPRansac``
   (EPnP samples) and Levenberg-Marquardt on the inliers give the current-from-keyframe pose; if that
   fails, the solver is tried once more seeded with the prior (or, without one, the constant-velocity
   prediction). A PnP pose that jumps more than ``max_step_*`` from the previous frame counts as failed.
3. When the PnP fails, the prior ``prior_T_ck`` (e.g. the learned pose head) stands in for up to
   ``max_prior_frames`` consecutive frames; without a prior, or after that, tracking is LOST.
4. A new keyframe starts when the inliers fall below ``keyframe_min_inliers`` or below
   ``keyframe_min_tracked_fraction`` of the keyframe's points, when the median parallax since the
   keyframe exceeds ``keyframe_max_parallax_px``, after ``keyframe_max_frames``, or after a prior
   fallback (if this frame has the corners and depth for one; otherwise the old keyframe stays).
   It keeps the surviving tracks and tops them up with new corners; a surviving track's depth is
   the geometric mean of the map's (the old keyframe's point seen from the new pose, weighted by
   the depth maps it already averages, up to ``depth_fusion_max_weight``) and the new depth map's.
   Then the last ``window_keyframes`` keyframes are bundle-adjusted (:mod:`vega_ros.odometry.window`):
   their poses and the depths of the tracks they share, against the tracks' pixels and each keyframe's
   raw depth map; the keyframes' points take the adjusted depths, so the next frames' PnP runs on
   structure the views agree on, not on one depth map's shape.
5. While LOST, every frame tries to start a keyframe (it needs ``recover_min_points`` corners with
   valid depth); the first that succeeds is placed at the last good pose and reported RECOVERED.

Covariance (x, y, z, rx, ry, rz in the world frame, :func:`pose_math.pnp_covariance_world`): the
Gauss-Newton covariance of the current frame's pose from its PnP inliers (pixel noise from their
residuals, floored at ``min_pixel_sigma``), plus the keyframe's covariance, so uncertainty grows
from keyframe to keyframe as drift does. A prior fallback adds ``prior_sigma_*``; LOST reports
``lost_sigma_*``. The depth's own error is not modelled beyond what it does to the residuals.

A stamp earlier than the previous one (a replayed bag, a reset simulation) resets the odometry.

The prior from a pose head that gives ``T_odom_cam`` per frame in its own odometry frame: remember
the head's pose ``H_kf`` of the last frame whose result had ``keyframe=True``; then
``prior_T_ck = inv(H_current) @ H_kf`` (``geometry.relative_pose(H_current, H_kf)``), as
bench/bench_odometry.py does.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

import numpy as np

from vega_ros import geometry
from vega_ros.odometry import pose_math
from vega_ros.odometry.features import detect_corners, refine_from_keyframe, track_lk
from vega_ros.odometry.pnp import solve_pnp
from vega_ros.odometry.settings import OdometrySettings
from vega_ros.odometry.window import WindowProblem, refine_window


class TrackStatus(enum.Enum):
    INITIALISING = "initialising"  # no keyframe yet (or this frame made the first one)
    TRACKING = "tracking"
    LOST = "lost"  # the pose is the last good one, with a huge covariance
    RECOVERED = "recovered"  # this frame re-initialised tracking at the last good pose


@dataclass(frozen=True)
class VoResult:
    T_wc: np.ndarray  # [4, 4] world(odom)-from-camera; world = the first frame's camera
    covariance: np.ndarray  # [6, 6] (x, y, z, rx, ry, rz) in the world frame, as nav_msgs/Odometry wants
    status: TrackStatus
    keyframe: bool  # this frame became a keyframe
    inliers: int  # PnP inliers (0 when the pose came from the prior, on keyframe starts and when lost)


@dataclass
class _Keyframe:
    frame: int  # frame counter when it was made
    gray: np.ndarray  # [H, W] uint8 its image (tracks are re-aligned against it)
    T_wc: np.ndarray  # [4, 4]
    covariance: np.ndarray  # [6, 6] world frame
    ids: np.ndarray  # [N] track ids
    uv: np.ndarray  # [N, 2] pixels of the tracks in the keyframe
    points: np.ndarray  # [N, 3] keyframe camera frame; NaN rows: no trustworthy depth
    weights: np.ndarray  # [N] how many depth maps each point's depth averages (0: none)
    z_measured: np.ndarray  # [N] z-depth (m) this keyframe's own depth map gave each track (NaN: none), before fusion


@dataclass
class OdometryCounters:
    frames: int = 0
    keyframes: int = 0
    losses: int = 0  # transitions into LOST
    recoveries: int = 0
    prior_fallbacks: int = 0  # frames whose pose came from the prior
    pnp_failures: int = 0
    window_refinements: int = 0
    resets: int = 0
    last_inliers: int = 0


class VisualOdometry:
    """Visual odometry on metric depth. Plain Python (numpy, OpenCV, scipy); the node owns one."""

    def __init__(self, settings: OdometrySettings) -> None:
        if not isinstance(settings, OdometrySettings):
            raise TypeError(f"VisualOdometry needs OdometrySettings, got {type(settings).__name__}")
        self.settings = settings
        self.counters = OdometryCounters()
        self.reset()

    # ------------------------------------------------------------------ public

    def reset(self) -> None:
        """Forget everything but the counters: the next frame starts a new world at its camera."""
        self._state = TrackStatus.INITIALISING
        self._kf: _Keyframe | None = None
        self._window: deque[_Keyframe] = deque(maxlen=max(self.settings.window_keyframes, 1))
        self._prev_gray: np.ndarray | None = None
        self._uv = np.zeros((0, 2))  # [N, 2] current pixels of the keyframe's tracks
        self._idx = np.zeros(0, int)  # [N] row of each track in the keyframe arrays
        self._T_last = np.eye(4)
        self._T_prev = np.eye(4)
        self._T_good = np.eye(4)
        self._cov_good = np.zeros((6, 6))
        self._prior_run = 0
        self._next_id = 0
        self._last_stamp: float | None = None
        self._K = np.eye(3)
        self.counters.resets += 1

    @property
    def keyframe_T_wc(self) -> np.ndarray | None:
        """``[4, 4]`` pose of the current keyframe (what ``prior_T_ck`` is relative to), None before one exists."""
        return None if self._kf is None else self._kf.T_wc.copy()

    @property
    def status(self) -> TrackStatus:
        return self._state

    def track(self, gray: np.ndarray, depth: np.ndarray, K: np.ndarray, stamp_s: float,
              prior_T_ck: np.ndarray | None = None) -> VoResult:
        """Track one frame.

        Args:
            gray: ``[H, W]`` uint8. depth: ``[H, W]`` float32 metres, 0 = invalid, same pixels as gray.
            K: ``[3, 3]`` float64 intrinsics of gray/depth (half-pixel convention of vega_ros.geometry).
            stamp_s: the frame's time (s); an earlier stamp than the last resets the odometry.
            prior_T_ck: optional ``[4, 4]`` current-from-keyframe pose (keyframe: :attr:`keyframe_T_wc`),
                used to seed the PnP and as its fallback.
        """
        gray, depth, K, prior_T_ck = _validate(gray, depth, K, stamp_s, prior_T_ck)
        if self._last_stamp is not None and stamp_s < self._last_stamp:
            self.reset()
        self._last_stamp = float(stamp_s)
        self.counters.frames += 1
        if self._state in (TrackStatus.INITIALISING, TrackStatus.LOST):
            result = self._start(gray, depth, K)
        else:
            result = self._follow(gray, depth, K, prior_T_ck)
        self._prev_gray = gray
        self.counters.last_inliers = result.inliers
        return result

    # ------------------------------------------------------------------ states

    def _start(self, gray: np.ndarray, depth: np.ndarray, K: np.ndarray) -> VoResult:
        """First keyframe, or re-initialisation at the last good pose while LOST."""
        s = self.settings
        lost = self._state == TrackStatus.LOST
        T_wc = self._T_good.copy() if lost else np.eye(4)
        cov = self._cov_good.copy()
        if not self._new_keyframe(gray, depth, K, T_wc, cov, keep_tracks=False, min_points=s.recover_min_points):
            status = self._state
            covariance = pose_math.diagonal_covariance(s.lost_sigma_m, s.lost_sigma_deg) if lost else np.zeros((6, 6))
            return VoResult(T_wc=T_wc, covariance=covariance, status=status, keyframe=False, inliers=0)
        self._T_prev = self._T_last = self._T_good = T_wc
        if lost:
            self.counters.recoveries += 1
        self._state = TrackStatus.TRACKING
        return VoResult(T_wc=T_wc.copy(), covariance=cov, status=TrackStatus.RECOVERED if lost else TrackStatus.INITIALISING,
                        keyframe=True, inliers=0)

    def _follow(self, gray: np.ndarray, depth: np.ndarray, K: np.ndarray, prior_T_ck: np.ndarray | None) -> VoResult:
        s, kf = self.settings, self._kf
        assert kf is not None and self._prev_gray is not None
        uv, ok = track_lk(self._prev_gray, gray, self._uv, s)
        self._uv, self._idx = uv[ok], self._idx[ok]
        self._uv, _ = refine_from_keyframe(kf.gray, gray, kf.uv[self._idx], self._uv, s)
        has_3d = np.all(np.isfinite(kf.points[self._idx]), axis=1)
        rows = np.flatnonzero(has_3d)
        T_pred = self._T_last @ geometry.relative_pose(self._T_prev, self._T_last)  # constant velocity
        guess = prior_T_ck if prior_T_ck is not None else geometry.relative_pose(T_pred, kf.T_wc)
        pnp = solve_pnp(kf.points[self._idx[rows]], self._uv[rows], K, s)
        if pnp is None:
            pnp = solve_pnp(kf.points[self._idx[rows]], self._uv[rows], K, s, guess_T_ck=guess)
        T_wc = None
        if pnp is not None:
            T_wc = kf.T_wc @ geometry.se3_inverse(pnp.T_ck)
            dt, dr = pose_math.pose_step(self._T_last, T_wc)
            if dt > s.max_step_translation_m or dr > s.max_step_rotation_deg:
                T_wc, pnp = None, None
        inliers, used_prior = 0, False
        if pnp is not None:
            inl = rows[pnp.inliers]
            pts_w = geometry.transform_points(kf.T_wc, kf.points[self._idx[inl]])
            cov_rel, _ = pose_math.pnp_covariance_world(T_wc, pts_w, self._uv[inl], K, s.min_pixel_sigma)
            cov = kf.covariance + cov_rel
            inliers = len(inl)
            outliers = np.setdiff1d(rows, inl)
            keep = np.ones(len(self._idx), bool)
            keep[outliers] = False
            self._uv, self._idx = self._uv[keep], self._idx[keep]
            self._prior_run = 0
        else:
            self.counters.pnp_failures += 1
            if prior_T_ck is None or self._prior_run >= s.max_prior_frames:
                return self._lose()
            T_wc = kf.T_wc @ geometry.se3_inverse(prior_T_ck)
            cov = kf.covariance + pose_math.diagonal_covariance(s.prior_sigma_m, s.prior_sigma_deg)
            self._prior_run += 1
            self.counters.prior_fallbacks += 1
            used_prior = True
        make_kf = used_prior or self._wants_keyframe(inliers)
        status = TrackStatus.TRACKING
        if make_kf:
            if self._new_keyframe(gray, depth, K, T_wc, cov, keep_tracks=True, min_points=s.min_pnp_inliers, fuse=not used_prior):
                T_wc = self._refine() if not used_prior else T_wc
            else:  # too little texture or depth here: keep the old keyframe (the prior still chains from it)
                make_kf = False
        self._T_prev, self._T_last = self._T_last, T_wc
        if not used_prior:
            self._T_good, self._cov_good = T_wc.copy(), cov.copy()
        return VoResult(T_wc=T_wc.copy(), covariance=cov, status=status, keyframe=make_kf, inliers=inliers)

    def _lose(self) -> VoResult:
        s = self.settings
        self._state = TrackStatus.LOST
        self.counters.losses += 1
        self._kf = None
        self._window.clear()
        self._uv, self._idx = np.zeros((0, 2)), np.zeros(0, int)
        self._prior_run = 0
        return VoResult(T_wc=self._T_good.copy(), covariance=pose_math.diagonal_covariance(s.lost_sigma_m, s.lost_sigma_deg),
                        status=TrackStatus.LOST, keyframe=False, inliers=0)

    # ------------------------------------------------------------------ keyframes

    def _wants_keyframe(self, inliers: int) -> bool:
        s, kf = self.settings, self._kf
        assert kf is not None
        with_depth = int(np.sum(np.all(np.isfinite(kf.points), axis=1)))
        if inliers < s.keyframe_min_inliers or inliers < s.keyframe_min_tracked_fraction * with_depth:
            return True
        if pose_math.median_parallax_px(kf.uv[self._idx], self._uv) > s.keyframe_max_parallax_px:
            return True
        return self.counters.frames - kf.frame >= s.keyframe_max_frames

    def _new_keyframe(self, gray: np.ndarray, depth: np.ndarray, K: np.ndarray, T_wc: np.ndarray, cov: np.ndarray,
                      keep_tracks: bool, min_points: int, fuse: bool = False) -> bool:
        """Make this frame the keyframe (surviving tracks + new corners); False if too few points have depth.

        With ``fuse`` (a PnP pose, so the map's points are in this camera where the pose says), the
        surviving tracks' depth is fused with the map's (:func:`pose_math.fuse_depth`): the map's scale
        carries over from keyframe to keyframe instead of restarting at each depth map's own."""
        s = self.settings
        if keep_tracks and self._kf is not None:
            ids, uv = self._kf.ids[self._idx], self._uv
        else:
            ids, uv = np.zeros(0, int), np.zeros((0, 2))
        n_kept = len(uv)
        new_uv = detect_corners(gray, uv, s.max_features - len(uv), s)
        new_ids = np.arange(self._next_id, self._next_id + len(new_uv))
        ids, uv = np.concatenate([ids, new_ids]), np.concatenate([uv, new_uv])
        z = z_measured = pose_math.sample_depth(depth, uv, s.depth_min_m, s.depth_max_m, s.depth_edge_max_ratio)
        weights = np.isfinite(z).astype(np.float64)
        if fuse and n_kept and s.depth_fusion_max_weight > 0 and self._kf is not None:
            old = self._kf
            z_map = np.full(len(uv), np.nan)
            T_new_old = geometry.relative_pose(np.asarray(T_wc, np.float64), old.T_wc)
            z_map[:n_kept] = geometry.transform_points(T_new_old, old.points[self._idx])[:, 2]
            w_map = np.zeros(len(uv))
            w_map[:n_kept] = old.weights[self._idx]
            z, weights = pose_math.fuse_depth(z_map, w_map, z, s.depth_fusion_max_weight)
        if int(np.sum(np.isfinite(z))) < min_points:
            return False
        self._next_id += len(new_uv)
        points = pose_math.backproject(uv, z, K)  # NaN rows where z is NaN
        kf = _Keyframe(frame=self.counters.frames, gray=gray, T_wc=np.asarray(T_wc, np.float64).copy(), covariance=cov.copy(),
                       ids=ids, uv=uv.copy(), points=points, weights=weights, z_measured=z_measured)
        if not keep_tracks:
            self._window.clear()
        self._kf = kf
        self._window.append(kf)
        self._uv, self._idx = uv.copy(), np.arange(len(uv))
        self.counters.keyframes += 1
        self._K = K
        return True

    def _refine(self) -> np.ndarray:
        """Bundle-adjust the window (poses and the depths of shared tracks, :mod:`vega_ros.odometry.window`);
        the keyframes' points take the refined depths. Returns the (possibly moved) pose of the newest keyframe."""
        s = self.settings
        kfs = list(self._window)
        if s.window_keyframes < 2 or len(kfs) < 2:
            return kfs[-1].T_wc.copy()
        built = _window_problem(kfs, self._K)
        if built is None:
            return kfs[-1].T_wc.copy()
        problem, entry_kf, entry_row, entry_lm = built
        T_before = np.stack([k.T_wc for k in kfs])
        T_after, log_z = refine_window(T_before, problem, self._K, s.window_depth_sigma_log, s.window_huber_px,
                                       s.window_max_iterations)
        if np.array_equal(T_after, T_before) and np.array_equal(log_z, problem.log_z):  # nothing refined
            return kfs[-1].T_wc.copy()
        for k, T in zip(kfs, T_after):
            k.T_wc = T
        # every keyframe's copy of a landmark moves to where the adjusted landmark is
        P_host = problem.ray * np.exp(log_z)[:, None]
        for i, k in enumerate(kfs):
            sel = entry_kf == i
            lm = entry_lm[sel]
            T_kh = geometry.relative_pose(T_after[i][None], T_after[problem.host[lm]])
            k.points[entry_row[sel]] = (T_kh[:, :3, :3] @ P_host[lm][:, :, None])[:, :, 0] + T_kh[:, :3, 3]
        self.counters.window_refinements += 1
        return kfs[-1].T_wc.copy()


def _window_problem(kfs: list[_Keyframe], K: np.ndarray):
    """The window's bundle-adjustment problem: one landmark per track seen by two or more keyframes and
    with a depth in at least one (its host: the oldest of those). Returns ``(problem, kf [E], row [E],
    landmark [E])`` where the E entries are the keyframe rows that see a landmark, or None without landmarks."""
    m = len(kfs)
    kf_of = np.concatenate([np.full(len(k.ids), i) for i, k in enumerate(kfs)])
    row_of = np.concatenate([np.arange(len(k.ids)) for k in kfs])
    ids = np.concatenate([k.ids for k in kfs])
    has_point = np.concatenate([np.all(np.isfinite(k.points), axis=1) for k in kfs])
    z_meas = np.concatenate([k.z_measured for k in kfs])
    z_point = np.concatenate([k.points[:, 2] for k in kfs])
    uv = np.concatenate([k.uv for k in kfs])
    _, track = np.unique(ids, return_inverse=True)
    host = np.full(track.max() + 1 if len(track) else 0, m)
    np.minimum.at(host, track[has_point], kf_of[has_point])
    seen = np.bincount(track)
    keep_track = (host < m) & (seen >= 2)
    if not keep_track.any():
        return None
    lm_of_track = np.cumsum(keep_track) - 1
    e = keep_track[track]
    e_kf, e_row, e_lm = kf_of[e], row_of[e], lm_of_track[track[e]]
    e_uv, e_z = uv[e], z_meas[e]
    lm_host = host[keep_track]
    is_host = e_kf == lm_host[e_lm]
    order = np.argsort(e_lm[is_host])  # one host entry per landmark, in landmark order
    host_uv, z_host = e_uv[is_host][order], z_point[e][is_host][order]
    depth = np.isfinite(e_z) & (e_z > 0)
    problem = WindowProblem(host=lm_host, ray=pose_math.backproject(host_uv, np.ones(len(host_uv)), K), log_z=np.log(z_host),
                            obs_landmark=e_lm[~is_host], obs_keyframe=e_kf[~is_host], obs_uv=e_uv[~is_host],
                            depth_landmark=e_lm[depth], depth_keyframe=e_kf[depth], depth_log_z=np.log(e_z[depth]))
    return problem, e_kf, e_row, e_lm


def _validate(gray, depth, K, stamp_s, prior_T_ck):
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"VisualOdometry.track: gray must be [H, W] uint8, got {gray.shape} {gray.dtype}")
    depth = np.asarray(depth)
    if depth.shape != gray.shape:
        raise ValueError(f"VisualOdometry.track: depth {depth.shape} must have the pixels of gray {gray.shape}")
    if not np.issubdtype(depth.dtype, np.floating):
        raise ValueError(f"VisualOdometry.track: depth must be float metres, got {depth.dtype}")
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"VisualOdometry.track: K must be a finite [3, 3] with positive focal lengths, got {K.tolist()}")
    if not np.isfinite(stamp_s):
        raise ValueError(f"VisualOdometry.track: stamp_s must be finite, got {stamp_s}")
    if prior_T_ck is not None:
        prior_T_ck = np.asarray(prior_T_ck, dtype=np.float64)
        if prior_T_ck.shape != (4, 4) or not np.all(np.isfinite(prior_T_ck)):
            raise ValueError(f"VisualOdometry.track: prior_T_ck must be a finite [4, 4], got shape {prior_T_ck.shape}")
    return np.ascontiguousarray(gray), depth, K, prior_T_ck
