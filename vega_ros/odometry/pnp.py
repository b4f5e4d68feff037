"""Camera pose from 2D-3D matches: ``cv2.solvePnPRansac`` then Levenberg-Marquardt on the inliers."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vega_ros import geometry
from vega_ros.odometry.settings import OdometrySettings


@dataclass(frozen=True)
class PnpResult:
    T_ck: np.ndarray  # [4, 4] current-from-keyframe: x_current = T_ck @ x_keyframe
    inliers: np.ndarray  # [M] int indices into the matches
    rms_px: float  # RMS reprojection error of the inliers after refinement


def solve_pnp(points_k: np.ndarray, uv: np.ndarray, K: np.ndarray, s: OdometrySettings,
              guess_T_ck: np.ndarray | None = None) -> PnpResult | None:
    """Pose of the current camera from keyframe points ``points_k [N, 3]`` (keyframe camera frame, m)
    seen at ``uv [N, 2]`` (half-pixel convention: with our K, OpenCV's pinhole model maps points
    straight to these coordinates). ``guess_T_ck`` seeds the solver. Returns None when RANSAC fails
    or finds fewer than ``min_pnp_inliers`` inliers."""
    points_k = np.ascontiguousarray(points_k, dtype=np.float64).reshape(-1, 3)
    uv = np.ascontiguousarray(uv, dtype=np.float64).reshape(-1, 2)
    if len(points_k) < max(s.min_pnp_inliers, 6):
        return None
    K = np.asarray(K, dtype=np.float64)
    use_guess = guess_T_ck is not None
    rvec0 = cv2.Rodrigues(np.asarray(guess_T_ck, np.float64)[:3, :3])[0] if use_guess else np.zeros((3, 1))
    tvec0 = np.asarray(guess_T_ck, np.float64)[:3, 3].reshape(3, 1).copy() if use_guess else np.zeros((3, 1))
    ok, rvec, tvec, inliers = cv2.solvePnPRansac(
        points_k, uv, K, None, rvec0.copy(), tvec0.copy(), useExtrinsicGuess=use_guess,
        iterationsCount=s.ransac_iterations, reprojectionError=s.ransac_reprojection_px,
        confidence=s.ransac_confidence, flags=cv2.SOLVEPNP_EPNP if not use_guess else cv2.SOLVEPNP_ITERATIVE)
    if not ok or inliers is None or len(inliers) < s.min_pnp_inliers:
        return None
    inl = inliers.ravel()
    rvec, tvec = cv2.solvePnPRefineLM(points_k[inl], uv[inl], K, None, rvec, tvec)
    # the refined pose may admit more inliers than RANSAC's: re-select once and refine again
    proj = cv2.projectPoints(points_k, rvec, tvec, K, None)[0].reshape(-1, 2)
    err = np.linalg.norm(proj - uv, axis=1)
    inl2 = np.flatnonzero(err <= s.ransac_reprojection_px)
    if len(inl2) >= s.min_pnp_inliers:
        inl = inl2
        rvec, tvec = cv2.solvePnPRefineLM(points_k[inl], uv[inl], K, None, rvec, tvec)
    proj = cv2.projectPoints(points_k[inl], rvec, tvec, K, None)[0].reshape(-1, 2)
    rms = float(np.sqrt(np.mean(np.sum((proj - uv[inl]) ** 2, axis=1))))
    T_ck = geometry.make_transform(cv2.Rodrigues(rvec)[0], tvec.ravel())
    if not np.all(np.isfinite(T_ck)):
        return None
    return PnpResult(T_ck=T_ck, inliers=inl, rms_px=rms)
