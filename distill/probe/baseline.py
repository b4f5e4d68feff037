"""The classical pose baseline: ORB features + essential matrix with RANSAC on the probe's frame pairs."""

from __future__ import annotations

import numpy as np
from tqdm import tqdm

from distill.metrics import pose_auc_table
from vega_ros import geometry as geo


def orb_relative_pose(img_a: np.ndarray, img_b: np.ndarray, K_a: np.ndarray, K_b: np.ndarray,
                      n_features: int = 2000) -> np.ndarray | None:
    """Pose of camera b in camera a (``T_ab [4, 4]``, unit translation) from ORB + essential matrix.

    ``img_*``: ``[3, H, W]`` float in [0, 1] or uint8. OpenCV keypoints put pixel centres at integer
    coordinates, so 0.5 is added before normalising with K (our half-pixel convention). Returns
    None when matching or RANSAC fails.
    """
    import cv2

    def gray(img):
        img = np.asarray(img)
        img = (img * 255).round().astype(np.uint8) if img.dtype != np.uint8 else img
        return cv2.cvtColor(np.ascontiguousarray(img.transpose(1, 2, 0)), cv2.COLOR_RGB2GRAY)

    orb = cv2.ORB_create(nfeatures=n_features, edgeThreshold=8, patchSize=15, fastThreshold=5)
    ka, da = orb.detectAndCompute(gray(img_a), None)
    kb, db = orb.detectAndCompute(gray(img_b), None)
    if da is None or db is None or len(ka) < 5 or len(kb) < 5:
        return None
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(da, db)
    if len(matches) < 8:
        return None
    pa = np.float64([ka[m.queryIdx].pt for m in matches]) + 0.5
    pb = np.float64([kb[m.trainIdx].pt for m in matches]) + 0.5
    return essential_relative_pose(pa, pb, K_a, K_b)


def essential_relative_pose(uv_a: np.ndarray, uv_b: np.ndarray, K_a: np.ndarray, K_b: np.ndarray,
                            threshold_px: float = 1.0) -> np.ndarray | None:
    """``T_ab [4, 4]`` (pose of camera b in camera a, unit translation) from matched pixels
    ``uv_a, uv_b [M, 2]`` (half-pixel convention) by an essential matrix with RANSAC."""
    import cv2

    def normalise(p, K):
        K = np.asarray(K, dtype=np.float64)
        return np.c_[(p[:, 0] - K[0, 2]) / K[0, 0], (p[:, 1] - K[1, 2]) / K[1, 1]]

    if len(uv_a) < 5:
        return None
    na, nb = normalise(np.asarray(uv_a, np.float64), K_a), normalise(np.asarray(uv_b, np.float64), K_b)
    thresh = threshold_px / float(np.mean([K_a[0, 0], K_a[1, 1]]))
    E, inl = cv2.findEssentialMat(na, nb, np.eye(3), method=cv2.RANSAC, prob=0.999, threshold=thresh)
    if E is None or E.shape != (3, 3):
        return None
    _, R, t, _ = cv2.recoverPose(E, na, nb, np.eye(3), mask=inl)
    T_ba = geo.make_transform(R, t.ravel())  # x_b = R x_a + t
    return geo.se3_inverse(T_ba)


def orb_pose_errors(images: np.ndarray, K: np.ndarray, T_wc: np.ndarray, n_features: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Rotation / translation-direction errors (degrees) of ORB poses over all ordered pairs of a clip
    (the pairs and error definition of ``geometry.pairwise_relative_pose_errors``); failures count 180°."""
    s = len(images)
    r_err, t_err = [], []
    for i in range(s):
        for j in range(s):
            if i == j:
                continue
            T_gt = geo.relative_pose(T_wc[i], T_wc[j])
            T_est = orb_relative_pose(images[i], images[j], K[i], K[j], n_features)
            if T_est is None:
                r_err.append(180.0)
                t_err.append(180.0)
                continue
            r_err.append(float(geo.rotation_angle_deg(T_est[:3, :3], T_gt[:3, :3])))
            t_err.append(float(geo.translation_angle_deg(T_est[:3, 3], T_gt[:3, 3])))
    return np.array(r_err), np.array(t_err)


def orb_baseline(cache: dict, n_features: int = 2000) -> dict:
    r_all, t_all = [], []
    for i in tqdm(range(cache["images"].shape[0]), desc="orb", unit="clip", dynamic_ncols=True, disable=None):
        r, t = orb_pose_errors(cache["images"][i].numpy(), cache["K"][i].numpy().astype(np.float64),
                               cache["T_wc"][i].numpy().astype(np.float64), n_features)
        r_all.append(r)
        t_all.append(t)
    return pose_auc_table(np.concatenate(r_all), np.concatenate(t_all))


