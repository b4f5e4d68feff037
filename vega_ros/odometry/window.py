"""Windowed bundle adjustment: the poses of the last keyframes and the depths of the tracks they share.

Every track seen by two or more window keyframes is a landmark, anchored in the oldest keyframe
that has a depth for it (its host): the ray through its pixel there and a log z-depth ``s`` along
it. Two kinds of residual, both in pixel units:

- reprojection: the landmark must project onto the track's pixel in every other keyframe that sees it;
- depth: the landmark's log z-depth in a keyframe must match what that keyframe's depth map said
  (the raw map, not the fused value, so that no map counts twice), divided by ``depth_sigma_log``:
  an error of one ``depth_sigma_log`` (a relative depth error of about that size) costs as much as
  one pixel of reprojection error.

The depth terms hold the metric scale (monocular views alone could not) and let the views correct
each depth map's shape where the keyframes see the landmark with parallax: a predicted depth map that
is too flat makes PnP on it under-estimate the motion, and triangulation across the window pulls
the shape back. With a small ``depth_sigma_log`` (0.01) the depths stay close to what the maps say
and mostly the poses move. The oldest keyframe is held fixed (it anchors the gauge); the others' ``T_wc`` move by
a right perturbation ``T_wc <- T_wc @ [so3_exp(w) | v]`` with ``xi = (v, w)`` (translation in
metres, rotation vector in radians, both in the keyframe's camera frame).

The solver is Levenberg-Marquardt with a Huber loss (iteratively reweighted) on an analytic
Jacobian. A landmark has one parameter and every residual row sees one landmark, so its block of
the normal equations is diagonal: the landmarks are eliminated by the Schur complement and each
step solves a ``6 (M - 1)`` square system, whatever the number of tracks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from vega_ros import geometry
from vega_ros.odometry.pose_math import projection_jacobian, skew, so3_exp

RELATIVE_DECREASE_STOP = 1e-3
"""Levenberg-Marquardt stops once a step lowers the robust cost by less than this share of it."""


@dataclass(frozen=True)
class WindowProblem:
    """What the window's ``M`` keyframes saw of ``L`` landmarks.

    Attributes:
        host: ``[L]`` int, the keyframe each landmark is anchored in.
        ray: ``[L, 3]`` the ray of its pixel in the host camera, scaled to z = 1 (OpenCV frame).
        log_z: ``[L]`` its starting log z-depth in the host camera (log metres).
        obs_landmark, obs_keyframe: ``[N]`` int, which landmark each pixel observation is of, and where
            (never the landmark's host: there the ray passes through the pixel by construction).
        obs_uv: ``[N, 2]`` the observed pixels (half-pixel convention).
        depth_landmark, depth_keyframe: ``[D]`` int, which landmark each depth measurement is of, and
            which keyframe's depth map gave it (the host included).
        depth_log_z: ``[D]`` the measured log z-depth (log metres, that keyframe's camera).
    """

    host: np.ndarray
    ray: np.ndarray
    log_z: np.ndarray
    obs_landmark: np.ndarray
    obs_keyframe: np.ndarray
    obs_uv: np.ndarray
    depth_landmark: np.ndarray
    depth_keyframe: np.ndarray
    depth_log_z: np.ndarray


@dataclass(frozen=True)
class _Rows:
    """The stacked residual rows of one linearisation: ``r [R]``, pose Jacobian ``Jp [R, 6 (M - 1)]``,
    landmark Jacobian ``Js [R]`` on landmark ``lm [R]``, and ``group [R]``: rows of one observation
    (a pixel's two, a depth's one) share a group, which is what the Huber loss weighs."""

    r: np.ndarray
    Jp: np.ndarray | None
    Js: np.ndarray | None
    lm: np.ndarray
    group: np.ndarray


def _in_keyframe(T_ba: np.ndarray, problem: WindowProblem, log_z: np.ndarray, lm: np.ndarray, kf: np.ndarray):
    """Landmarks ``lm [n]`` in the cameras of keyframes ``kf [n]``, given every pair's relative pose
    ``T_ba [M, M, 4, 4]`` (``T_ba[b, a] = inv(T_wb) @ T_wa``): ``q [n, 3]``, the host-frame points ``P [n, 3]``
    and the host-to-keyframe rotations ``R [n, 3, 3]``."""
    host = problem.host[lm]
    P = problem.ray[lm] * np.exp(log_z[lm])[:, None]
    R = T_ba[kf, host, :3, :3]
    return (R @ P[:, :, None])[:, :, 0] + T_ba[kf, host, :3, 3], P, R


def _chain(J_q: np.ndarray, q: np.ndarray, P: np.ndarray, R: np.ndarray, host: np.ndarray, kf: np.ndarray, m: int):
    """Jacobians of residuals with ``d r / d q = J_q [n, k, 3]`` with respect to the free poses
    ``[n, k, 6 (M - 1)]`` and to the landmark's log depth ``[n, k]``."""
    n, k = J_q.shape[:2]
    # q = inv(T_b) T_a Exp(xi_a) P: dq/dv_a = R_ba, dq/dw_a = -R_ba [P]x
    J_host = J_q @ np.concatenate([R, -R @ skew(P)], axis=2)
    # q = Exp(-xi_b) inv(T_b) T_a P: dq/dv_b = -I, dq/dw_b = [q]x
    J_kf = J_q @ np.concatenate([-np.broadcast_to(np.eye(3), (n, 3, 3)), skew(q)], axis=2)
    J = np.zeros((n, k, m, 6))
    rows = np.arange(n)
    other = host != kf  # a depth measured in the host itself does not depend on any pose
    J[rows[other], :, host[other]] = J_host[other]
    J[rows[other], :, kf[other]] += J_kf[other]
    # q = R_ba exp(s) ray + t_ba: dq/ds = R_ba P
    J_s = (J_q @ (R @ P[:, :, None]))[:, :, 0]
    return J[:, :, 1:].reshape(n, k, 6 * (m - 1)), J_s


def _linearise(T_wc: np.ndarray, log_z: np.ndarray, problem: WindowProblem, K: np.ndarray, depth_weight: float,
               with_jacobian: bool = True) -> _Rows:
    """Residual rows (pixels; NaN where a point falls behind the camera it is seen in) and, if asked, their Jacobians."""
    m = len(T_wc)
    T_ba = geometry.relative_pose(T_wc[:, None], T_wc[None, :])  # [M, M, 4, 4]
    lm_o, kf_o = problem.obs_landmark, problem.obs_keyframe
    q, P, R = _in_keyframe(T_ba, problem, log_z, lm_o, kf_o)
    uv_hat, _ = geometry.project_points(q, K)
    r_obs = uv_hat - problem.obs_uv  # [N, 2]
    lm_d, kf_d = problem.depth_landmark, problem.depth_keyframe
    qd, Pd, Rd = _in_keyframe(T_ba, problem, log_z, lm_d, kf_d)
    zd = np.where(qd[:, 2] > 0, qd[:, 2], np.nan)
    r_depth = depth_weight * (np.log(zd) - problem.depth_log_z)  # [D]
    n, d = len(lm_o), len(lm_d)
    r = np.concatenate([r_obs.ravel(), r_depth])
    lm = np.concatenate([np.repeat(lm_o, 2), lm_d])
    group = np.concatenate([np.repeat(np.arange(n), 2), n + np.arange(d)])
    if not with_jacobian:
        return _Rows(r=r, Jp=None, Js=None, lm=lm, group=group)
    J_proj = projection_jacobian(q, K)  # d uv / d q
    J_log = np.zeros((d, 1, 3))  # d (w log z) / d q
    J_log[:, 0, 2] = depth_weight / zd
    Jp_o, Js_o = _chain(J_proj, q, P, R, problem.host[lm_o], kf_o, m)
    Jp_d, Js_d = _chain(J_log, qd, Pd, Rd, problem.host[lm_d], kf_d, m)
    Jp = np.concatenate([Jp_o.reshape(2 * n, -1), Jp_d.reshape(d, -1)])
    Js = np.concatenate([Js_o.ravel(), Js_d.ravel()])
    return _Rows(r=r, Jp=Jp, Js=Js, lm=lm, group=group)


def _retract(T_wc: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """``T_wc [M, 4, 4]`` with keyframes 1..M-1 moved by ``delta [6 (M - 1)]`` (right perturbation, (v, w) each)."""
    d = delta.reshape(-1, 6)
    out = T_wc.copy()
    out[1:] = T_wc[1:] @ geometry.make_transform(so3_exp(d[:, 3:]), d[:, :3])
    return out


def _group_errors(rows: _Rows, groups: int) -> np.ndarray:
    """``[G]`` error norm of each observation (pixels); 1e3 where it is not finite (behind a camera)."""
    err = np.sqrt(np.bincount(rows.group, weights=np.where(np.isfinite(rows.r), rows.r, 0.0) ** 2, minlength=groups))
    bad = np.bincount(rows.group, weights=(~np.isfinite(rows.r)).astype(float), minlength=groups) > 0
    return np.where(bad, 1e3, err)


def _huber_cost(err_px: np.ndarray, scale: float) -> float:
    """Sum over observations of the Huber rho of their error norms ``err_px [G]`` (px^2)."""
    return float(np.sum(np.where(err_px <= scale, err_px**2, 2.0 * scale * err_px - scale**2)))


def window_residuals(T_wc: np.ndarray, problem: WindowProblem, K: np.ndarray, depth_sigma_log: float,
                     log_z: np.ndarray | None = None) -> np.ndarray:
    """Stacked residuals (pixels) ``[2 N + D]`` of ``problem`` under poses ``T_wc [M, 4, 4]`` and landmark
    log depths ``log_z [L]`` (default: the problem's own); 1e3 where a point falls behind a camera."""
    log_z = problem.log_z if log_z is None else np.asarray(log_z, np.float64)
    rows = _linearise(np.asarray(T_wc, np.float64), log_z, problem, np.asarray(K, np.float64),
                      1.0 / max(depth_sigma_log, 1e-9), with_jacobian=False)
    return np.where(np.isfinite(rows.r), rows.r, 1e3)


def refine_window(T_wc: np.ndarray, problem: WindowProblem, K: np.ndarray, depth_sigma_log: float, huber_px: float,
                  max_iterations: int, outlier_px: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bundle-adjust the window.

    Args:
        T_wc: ``[M, 4, 4]`` starting keyframe poses (world from camera); keyframe 0 stays where it is.
        problem: the landmarks and what the keyframes saw of them.
        K: ``[3, 3]`` intrinsics of every keyframe.
        depth_sigma_log: the depth maps' error, as a log-depth standard deviation (0.1: about 10 %).
        huber_px: Huber scale of every residual (pixels, or pixel-equivalents for depths).
        max_iterations: Levenberg-Marquardt iterations per round (each: one Jacobian, one or more cost evaluations).
        outlier_px: after a first round, observations still off by more than this (default ``3 huber_px``)
            are dropped and a second round starts where the first ended: a Huber loss still pulls on a
            wrong track in proportion to the Huber scale, a dropped one does not.
    Returns:
        ``(T_wc [M, 4, 4], log_z [L])`` refined, or the inputs when there is nothing to refine (M < 2,
        fewer pixel observations than 6 per free keyframe) or when no step lowers the robust cost.
    """
    T_wc = np.asarray(T_wc, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    log_z0 = np.asarray(problem.log_z, dtype=np.float64)
    m = len(T_wc)
    if m < 2 or len(problem.obs_landmark) < 6 * (m - 1):
        return T_wc.copy(), log_z0.copy()
    weight = 1.0 / max(float(depth_sigma_log), 1e-9)
    scale = max(float(huber_px), 1e-6)
    T, s = _levenberg_marquardt(T_wc, log_z0, problem, K, weight, scale, max_iterations)
    if T is None:
        return T_wc.copy(), log_z0.copy()
    limit = 3.0 * scale if outlier_px is None else float(outlier_px)
    n_obs = len(problem.obs_landmark)
    err = _group_errors(_linearise(T, s, problem, K, weight, with_jacobian=False), n_obs + len(problem.depth_landmark))
    keep_obs, keep_depth = err[:n_obs] <= limit, err[n_obs:] <= limit
    if not keep_obs.all() or not keep_depth.all():
        inliers = dataclasses.replace(
            problem, obs_landmark=problem.obs_landmark[keep_obs], obs_keyframe=problem.obs_keyframe[keep_obs],
            obs_uv=problem.obs_uv[keep_obs], depth_landmark=problem.depth_landmark[keep_depth],
            depth_keyframe=problem.depth_keyframe[keep_depth], depth_log_z=problem.depth_log_z[keep_depth])
        if keep_obs.sum() >= 6 * (m - 1):
            T2, s2 = _levenberg_marquardt(T, s, inliers, K, weight, scale, max_iterations)
            if T2 is not None:
                T, s = T2, s2
    return T, s


def _levenberg_marquardt(T_wc: np.ndarray, log_z: np.ndarray, problem: WindowProblem, K: np.ndarray, weight: float,
                         scale: float, max_iterations: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """One round of Levenberg-Marquardt from ``(T_wc, log_z)``; ``(None, None)`` if no step lowered the cost."""
    n_lm = len(log_z)
    groups = len(problem.obs_landmark) + len(problem.depth_landmark)

    def cost_of(rows: _Rows) -> float:
        return _huber_cost(_group_errors(rows, groups), scale)

    T, s = T_wc.copy(), log_z.copy()
    rows = _linearise(T, s, problem, K, weight)
    cost, lam = cost_of(rows), 1e-4
    start_cost = cost
    for _ in range(max(int(max_iterations), 1)):
        err = _group_errors(rows, groups)
        ok = np.isfinite(rows.r) & np.all(np.isfinite(rows.Jp), axis=1) & np.isfinite(rows.Js)
        w = np.where(err <= scale, 1.0, scale / np.maximum(err, 1e-12))[rows.group] * ok  # IRLS weights of the Huber loss
        r, Jp, Js = np.where(ok, rows.r, 0.0), np.where(ok[:, None], rows.Jp, 0.0), np.where(ok, rows.Js, 0.0)
        Jpw = Jp * w[:, None]
        H_pp, g_p = Jpw.T @ Jp, Jpw.T @ r
        H_ps = np.stack([np.bincount(rows.lm, weights=Jpw[:, c] * Js, minlength=n_lm) for c in range(Jp.shape[1])])
        H_ss = np.bincount(rows.lm, weights=w * Js**2, minlength=n_lm)
        g_s = np.bincount(rows.lm, weights=w * Js * r, minlength=n_lm)
        improved = converged = False
        while lam < 1e8:
            H_ss_d = H_ss * (1.0 + lam) + 1e-9
            S = H_pp + lam * np.diag(np.diag(H_pp) + 1e-9) - (H_ps / H_ss_d) @ H_ps.T
            try:
                d_p = np.linalg.solve(S, -g_p + H_ps @ (g_s / H_ss_d))
            except np.linalg.LinAlgError:
                lam *= 10.0
                continue
            d_s = (-g_s - H_ps.T @ d_p) / H_ss_d
            T_try, s_try = _retract(T, d_p), s + d_s
            rows_try = _linearise(T_try, s_try, problem, K, weight, with_jacobian=False)
            cost_try = cost_of(rows_try)
            if cost_try < cost:
                T, s, lam, improved = T_try, s_try, max(lam / 3.0, 1e-9), True
                converged = cost - cost_try < RELATIVE_DECREASE_STOP * cost
                cost = cost_try
                break
            lam *= 4.0
        if not improved or converged:
            break
        rows = _linearise(T, s, problem, K, weight)
    if not (np.all(np.isfinite(T)) and np.all(np.isfinite(s))) or cost >= start_cost:
        return None, None
    return T, s
