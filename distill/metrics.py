"""Probe metrics, per clip in numpy (the geometry comes from :mod:`vega_ros.geometry`).

- **Point error** (``point_map_error``): the GT point map (reference camera frame) is divided by its
  scene scale (mean ‖p‖₂ over valid pixels, as the loss), the prediction is aligned onto it by a
  least-squares scale (``Alignment.SCALE``) or a Umeyama similarity (``Alignment.SIM3``), and the
  error is the mean Euclidean distance over valid pixels. Tables report it ×10 (``POINT_ERR_FACTOR``)
  as the papers do.
- **Depth** (``depth_metrics``): AbsRel = mean |d̂ − d| / d and δ₁ = fraction with
  max(d̂/d, d/d̂) < 1.25, either metric (as predicted) or per-frame median-scaled
  (d̂ · median(d) / median(d̂)).
- **Pose** (``pose_errors`` + ``pose_auc``): rotation and translation-direction angles of the
  relative pose over all ordered frame pairs of a clip, AUC@5/15/30 over the pairs of all clips.
"""

from __future__ import annotations

import enum

import numpy as np

from vega_ros import geometry as geo

POINT_ERR_FACTOR = 10.0
"""Point errors are reported ×10 (the papers' tables)."""
AUC_THRESHOLDS = (5, 15, 30)


class Alignment(enum.Enum):
    SCALE = "scale"
    SIM3 = "sim3"


def point_map_error(
    pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, alignment: Alignment = Alignment.SCALE
) -> float:
    """Mean Euclidean error of ``pred [S, H, W, 3]`` vs ``gt`` after normalising gt and aligning pred.

    Returns NaN when fewer than 3 valid pixels exist (nothing to score).
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    mask = np.asarray(valid, dtype=bool) & np.isfinite(pred).all(-1) & np.isfinite(gt).all(-1)
    if mask.sum() < 3:
        return float("nan")
    p, g = pred[mask], gt[mask]
    g = g / max(np.linalg.norm(g, axis=-1).mean(), 1e-12)
    if Alignment(alignment) is Alignment.SIM3:
        s, R, t = geo.umeyama_alignment(p, g, with_scale=True)
        p = s * p @ R.T + t
    else:
        p = p * geo.scale_alignment(p, g) if np.any(p) else p
    return float(np.linalg.norm(p - g, axis=-1).mean())


def depth_metrics(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, median_scale: bool = True) -> dict[str, float]:
    """``{"abs_rel", "delta1"}`` of ``pred [S, H, W]`` (or ``[H, W]``) against metric ``gt``.

    With ``median_scale`` each frame's prediction is first multiplied by median(gt) / median(pred)
    over its valid pixels.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool) & (gt > 0) & np.isfinite(gt) & np.isfinite(pred)
    if pred.ndim == 2:
        pred, gt, valid = pred[None], gt[None], valid[None]
    rel, ratios = [], []
    for p, g, m in zip(pred, gt, valid):
        if not m.any():
            continue
        p, g = p[m], g[m]
        if median_scale:
            p = p * (np.median(g) / max(np.median(p), 1e-12))
        p = np.maximum(p, 1e-12)
        rel.append(np.abs(p - g) / g)
        ratios.append(np.maximum(p / g, g / p))
    if not rel:
        return {"abs_rel": float("nan"), "delta1": float("nan")}
    rel, ratios = np.concatenate(rel), np.concatenate(ratios)
    return {"abs_rel": float(rel.mean()), "delta1": float((ratios < 1.25).mean())}


def pose_errors(pose_enc_pred: np.ndarray, T_wc_gt: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotation and translation-direction errors (degrees) of all ordered pairs of one clip.

    ``pose_enc_pred [S, 9]`` is relative to frame 0 (so it decodes to poses in frame 0's "world");
    ``T_wc_gt [S, 4, 4]`` are the true world-from-camera poses.
    """
    T_pred, _ = geo.encoding_to_pose(np.asarray(pose_enc_pred, dtype=np.float64), height, width)
    return geo.pairwise_relative_pose_errors(T_pred, np.asarray(T_wc_gt, dtype=np.float64))


def pose_auc_table(r_err: np.ndarray, t_err: np.ndarray, thresholds=AUC_THRESHOLDS) -> dict[str, float]:
    """``{"auc@5": .., "auc@15": .., "auc@30": ..}`` (fractions in [0, 1])."""
    return {f"auc@{k}": geo.pose_auc(r_err, t_err, k) for k in thresholds}


class ProbeMetrics:
    """Accumulates per-clip metrics; :meth:`summary` averages them (pose AUC over all pairs)."""

    def __init__(self, alignment: Alignment = Alignment.SCALE):
        self.alignment = Alignment(alignment)
        self.point_err: list[float] = []
        self.depth_med: list[dict] = []
        self.depth_metric: list[dict] = []
        self.r_err: list[np.ndarray] = []
        self.t_err: list[np.ndarray] = []

    def add(self, pred: dict, sample: dict) -> None:
        """``pred`` / ``sample``: one clip's numpy arrays (no batch axis) with the contract's keys."""
        valid = np.asarray(sample["valid"], dtype=bool)
        h, w = valid.shape[-2:]
        self.point_err.append(point_map_error(pred["points"], sample["points_ref"], valid, self.alignment))
        self.depth_med.append(depth_metrics(pred["depth"], sample["depth"], valid, median_scale=True))
        self.depth_metric.append(depth_metrics(pred["depth"], sample["depth"], valid, median_scale=False))
        r, t = pose_errors(pred["pose_enc"], sample["T_wc"], h, w)
        self.r_err.append(r)
        self.t_err.append(t)

    def per_clip(self) -> dict[str, list[float]]:
        """One value per added clip (same order), for paired comparisons between encoders.

        ``pose_err_deg_median`` is the median over the clip's frame pairs of max(r_err, t_err).
        """
        return {
            "point_err_x10": [POINT_ERR_FACTOR * e for e in self.point_err],
            "depth_abs_rel": [d["abs_rel"] for d in self.depth_med],
            "depth_delta1": [d["delta1"] for d in self.depth_med],
            "pose_err_deg_median": [float(np.median(np.maximum(r, t))) for r, t in zip(self.r_err, self.t_err)],
        }

    def summary(self) -> dict[str, float]:
        if not self.point_err:
            raise ValueError("ProbeMetrics.summary: no clips were added")

        def mean(xs):
            xs = [x for x in xs if np.isfinite(x)]
            return float(np.mean(xs)) if xs else float("nan")

        out = {
            "clips": len(self.point_err),
            "point_err_x10": POINT_ERR_FACTOR * mean(self.point_err),
            "depth_abs_rel": mean([d["abs_rel"] for d in self.depth_med]),
            "depth_delta1": mean([d["delta1"] for d in self.depth_med]),
            "depth_abs_rel_metric": mean([d["abs_rel"] for d in self.depth_metric]),
            "depth_delta1_metric": mean([d["delta1"] for d in self.depth_metric]),
        }
        out.update(pose_auc_table(np.concatenate(self.r_err), np.concatenate(self.t_err)))
        return out


def paired_comparison(a: np.ndarray, b: np.ndarray, lower_is_better: bool = True, n_boot: int = 2000,
                      seed: int = 0) -> dict[str, float]:
    """How much better per-clip values ``a`` are than ``b`` on the same clips (paired bootstrap).

    Returns ``mean_diff`` = mean(a − b), its 95 % percentile-bootstrap interval ``ci_low`` /
    ``ci_high`` (clips resampled with replacement, ``n_boot`` times), ``better_frac`` (share of
    clips where ``a`` is strictly better) and ``n`` (clips where both are finite).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired_comparison needs two equal 1-d arrays, got {a.shape} and {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    d = a[ok] - b[ok]
    if d.size == 0:
        return {"mean_diff": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "better_frac": float("nan"), "n": 0}
    rng = np.random.default_rng(seed)
    boot = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    better = d < 0 if lower_is_better else d > 0
    return {"mean_diff": float(d.mean()), "ci_low": float(lo), "ci_high": float(hi),
            "better_frac": float(better.mean()), "n": int(d.size)}
