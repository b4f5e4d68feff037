"""distill.metrics on cases with known answers."""

import numpy as np
import pytest

from distill.metrics import (
    Alignment,
    ProbeMetrics,
    depth_metrics,
    paired_comparison,
    point_map_error,
    pose_auc_table,
    pose_errors,
)
from vega_ros import geometry as geo


def test_point_error_is_zero_for_a_scaled_copy():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(2, 4, 5, 3)) + np.array([0, 0, 4.0])
    valid = np.ones((2, 4, 5), dtype=bool)
    assert point_map_error(2.5 * gt, gt, valid) == pytest.approx(0.0, abs=1e-9)


def test_point_error_hand_computed_scale_alignment():
    gt = np.eye(3)[None, None]  # three unit points: mean norm 1, so normalising changes nothing
    pred = np.array([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 0]])[None, None]
    # least-squares scale = (p·g) / (p·p) = 4 / 8; aligned errors 0, 0, 1
    assert point_map_error(pred, gt, np.ones((1, 1, 3), bool)) == pytest.approx(1.0 / 3.0, rel=1e-9)


def test_point_error_normalises_gt_scale():
    gt = 10.0 * np.eye(3)[None, None]  # mean norm 10: scored in units of 10
    pred = np.array([[2.0, 0, 0], [0, 2.0, 0], [0, 0, 0]])[None, None]
    assert point_map_error(pred, gt, np.ones((1, 1, 3), bool)) == pytest.approx(1.0 / 3.0, rel=1e-9)


def test_point_error_sim3_removes_rigid_motion_scale_does_not():
    rng = np.random.default_rng(1)
    gt = rng.normal(size=(1, 6, 6, 3)) + np.array([0, 0, 3.0])
    R = geo.axis_angle_to_matrix(np.array([0.2, 1.0, 0.1]), 0.4)
    pred = 0.7 * gt @ R.T + np.array([0.3, -0.2, 0.5])
    valid = np.ones((1, 6, 6), bool)
    assert point_map_error(pred, gt, valid, Alignment.SIM3) == pytest.approx(0.0, abs=1e-9)
    assert point_map_error(pred, gt, valid, Alignment.SCALE) > 0.1


def test_point_error_ignores_invalid_and_needs_three_points():
    gt = np.tile(np.array([0.0, 0.0, 2.0]), (1, 2, 2, 1))
    gt[0, 0, 0] = (1.0, 0.0, 2.0)
    pred = gt.copy()
    pred[0, 1, 1] = (100.0, 100.0, 100.0)
    valid = np.ones((1, 2, 2), bool)
    valid[0, 1, 1] = False
    assert point_map_error(pred, gt, valid) == pytest.approx(0.0, abs=1e-9)
    valid[:] = False
    valid[0, 0, 0] = True
    assert np.isnan(point_map_error(pred, gt, valid))


def test_depth_metrics_hand_computed():
    gt = np.array([[1.0, 2.0], [4.0, 8.0]])
    pred = np.array([[1.0, 2.0], [4.0, 12.0]])  # medians 3 and 3: median scale 1
    valid = np.ones((2, 2), bool)
    m = depth_metrics(pred, gt, valid, median_scale=True)
    assert m["abs_rel"] == pytest.approx(0.5 / 4.0)
    assert m["delta1"] == pytest.approx(0.75)  # 12 / 8 = 1.5 fails


def test_depth_metrics_median_vs_metric():
    gt = np.linspace(1.0, 3.0, 12).reshape(1, 3, 4)
    valid = np.ones_like(gt, bool)
    med = depth_metrics(2.0 * gt, gt, valid, median_scale=True)
    met = depth_metrics(2.0 * gt, gt, valid, median_scale=False)
    assert med == pytest.approx({"abs_rel": 0.0, "delta1": 1.0})
    assert met == pytest.approx({"abs_rel": 1.0, "delta1": 0.0})


def test_depth_metrics_skip_invalid_and_zero_gt():
    gt = np.array([[1.0, 0.0], [2.0, 2.0]])
    pred = np.array([[1.0, 5.0], [2.0, 9.0]])
    valid = np.array([[True, True], [True, False]])
    assert depth_metrics(pred, gt, valid, median_scale=False)["abs_rel"] == pytest.approx(0.0)


def _encodings(T_wc, K, h, w):
    rel = geo.relative_pose(T_wc[0], T_wc)
    return geo.pose_to_encoding(rel, K, h, w)


def test_pose_errors_and_auc_perfect_and_known_rotation_error():
    h, w = 48, 64
    K = geo.intrinsics_from_fov(w, h, 60.0)
    eyes = [(2.0, 0.0, 1.0), (1.8, 0.8, 1.1), (1.2, 1.5, 1.0)]
    T_wc = np.stack([geo.look_at(np.array(e), np.zeros(3)) for e in eyes])
    enc = _encodings(T_wc, np.stack([K] * 3), h, w)
    r, t = pose_errors(enc, T_wc, h, w)
    assert r.shape == (6,) and np.allclose(r, 0, atol=1e-3) and np.allclose(t, 0, atol=1e-3)
    assert pose_auc_table(r, t)["auc@30"] == pytest.approx(1.0)
    # rotate frame 2's predicted orientation by 12.5 degrees about its own z: pairs with 2 are 12 degrees off
    bad_T = T_wc.copy()
    bad_T[2, :3, :3] = T_wc[2, :3, :3] @ geo.axis_angle_to_matrix(np.array([0.0, 0.0, 1.0]), np.deg2rad(12.5))
    r, t = pose_errors(_encodings(bad_T, np.stack([K] * 3), h, w), T_wc, h, w)
    pairs = [(i, j) for i in range(3) for j in range(3) if i != j]
    for (i, j), err in zip(pairs, r):
        assert err == pytest.approx(12.5 if 2 in (i, j) else 0.0, abs=1e-3)
    auc = pose_auc_table(r, np.zeros_like(t), thresholds=(5, 30))
    assert auc["auc@5"] == pytest.approx(2 / 6)
    # the 4 pairs at 12.5 degrees count from threshold 13 on (18 of 30), the 2 exact pairs always
    assert auc["auc@30"] == pytest.approx((2 / 6 * 30 + 4 / 6 * 18) / 30)


def test_probe_metrics_summary_on_perfect_prediction():
    from distill.probe import make_synthetic_clip

    clip = make_synthetic_clip(7, num_frames=3, height=24, width=32)
    h, w = clip["depth"].shape[-2:]
    pred = {
        "points": clip["points_ref"] * 0.5,  # any global scale is free
        "depth": clip["depth"] * 0.5,
        "pose_enc": _encodings(clip["T_wc"].astype(np.float64), clip["K"], h, w),
    }
    m = ProbeMetrics()
    m.add(pred, clip)
    s = m.summary()
    assert s["point_err_x10"] == pytest.approx(0.0, abs=1e-4)
    assert s["depth_abs_rel"] == pytest.approx(0.0, abs=1e-5) and s["depth_delta1"] == 1.0
    assert s["depth_abs_rel_metric"] == pytest.approx(0.5, abs=1e-5)
    assert s["auc@30"] == pytest.approx(1.0) and s["auc@5"] == pytest.approx(1.0)
    per = m.per_clip()
    assert per["depth_abs_rel"] == [pytest.approx(0.0, abs=1e-5)] and per["depth_delta1"] == [1.0]
    assert per["pose_err_deg_median"] == [pytest.approx(0.0, abs=0.05)]  # float32 encodings


def test_paired_comparison_known_answers():
    b = np.array([0.3, 0.5, 0.4, 0.6])
    c = paired_comparison(b - 0.1, b)  # every clip better by exactly 0.1
    assert c["mean_diff"] == pytest.approx(-0.1) and c["better_frac"] == 1.0 and c["n"] == 4
    assert c["ci_low"] == pytest.approx(-0.1) and c["ci_high"] == pytest.approx(-0.1)
    # higher is better (delta1): a lower value is worse; NaN clips are left out of the pairing
    c = paired_comparison(np.array([0.9, 0.5, np.nan]), np.array([0.8, 0.6, 0.7]), lower_is_better=False)
    assert c["n"] == 2 and c["better_frac"] == 0.5 and c["mean_diff"] == pytest.approx(0.0)
    assert c["ci_low"] == pytest.approx(-0.1) and c["ci_high"] == pytest.approx(0.1)  # resamples of {+0.1, -0.1}
    # a noisy difference centred on 0 has an interval across 0; a clear one does not
    rng = np.random.default_rng(1)
    x = rng.normal(size=400)
    noisy = paired_comparison(x + rng.normal(scale=0.5, size=400), x)
    assert noisy["ci_low"] < 0 < noisy["ci_high"]
    clear = paired_comparison(x - 0.2 + rng.normal(scale=0.5, size=400), x)
    assert clear["ci_high"] < 0 and clear["better_frac"] > 0.5
    with pytest.raises(ValueError):
        paired_comparison(np.zeros(3), np.zeros(4))


def test_probe_metrics_needs_clips():
    with pytest.raises(ValueError):
        ProbeMetrics().summary()
