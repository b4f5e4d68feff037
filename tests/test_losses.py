"""distill.losses against hand-computed cases; the cross-view warp against exact geometry."""

import math

import numpy as np
import pytest
import torch

from distill.losses import (
    ProbeLossConfig,
    ScaleNorm,
    conf_weighted_loss,
    cross_view_consistency_loss,
    global_alignment_loss,
    probe_loss,
    scene_scale,
    verifier_loss,
    warp_depth,
)
from vega_ros import geometry as geo

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_conf_weighted_loss_hand_computed():
    err = torch.tensor([1.0, 2.0, 5.0])
    conf = torch.tensor([1.0, math.e, 3.0])
    valid = torch.tensor([True, True, False])
    got = conf_weighted_loss(err, conf, valid, alpha=0.5)
    expected = ((1.0 - 0.0) + (2.0 * math.e - 0.5 * 1.0)) / 2.0
    assert got.item() == pytest.approx(expected, rel=1e-6)


def _one_frame_batch():
    # one frame, 1 x 2 pixels, identity pose; GT points at depth 2 and 4 on the optical axis
    K = torch.tensor([[[[2.0, 0.0, 1.0], [0.0, 2.0, 0.5], [0.0, 0.0, 1.0]]]])
    return {
        "points_ref": torch.tensor([[[[[0.0, 0.0, 2.0], [0.0, 0.0, 4.0]]]]]),
        "depth": torch.tensor([[[[2.0, 4.0]]]]),
        "valid": torch.ones(1, 1, 1, 2, dtype=torch.bool),
        "K": K,
        "T_wc": torch.eye(4)[None, None],
    }


def test_scene_scale_is_mean_valid_distance():
    b = _one_frame_batch()
    assert scene_scale(b["points_ref"], b["valid"]).item() == pytest.approx(3.0)
    half = b["valid"].clone()
    half[..., 1] = False
    assert scene_scale(b["points_ref"], half).item() == pytest.approx(2.0)


def test_probe_loss_hand_computed():
    b = _one_frame_batch()
    enc_gt = geo.pose_to_encoding(np.eye(4), b["K"][0, 0].numpy(), 1, 2)
    offset = torch.zeros(9)
    offset[0], offset[8] = 0.5, 2.0  # Huber(δ=1): 0.5 * 0.5² = 0.125 and 2 − 0.5 = 1.5
    pred = {
        "points": torch.tensor([[[[[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]]]]),  # GT / 3 = 2/3, 4/3: errors 1/3
        "points_conf": torch.ones(1, 1, 1, 2),
        "depth": torch.ones(1, 1, 1, 2),
        "depth_conf": torch.full((1, 1, 1, 2), 2.0),
        "pose_enc": (torch.from_numpy(enc_gt) + offset)[None, None],
    }
    cfg = ProbeLossConfig(alpha=0.2, huber_delta=1.0, weight_camera=2.0)
    total, terms = probe_loss(pred, b, cfg)
    assert terms["points"].item() == pytest.approx(1.0 / 3.0, rel=1e-5)
    assert terms["depth"].item() == pytest.approx(2.0 / 3.0 - 0.2 * math.log(2.0), rel=1e-5)
    assert terms["camera"].item() == pytest.approx((0.125 + 1.5) / 9.0, rel=1e-5)
    assert total.item() == pytest.approx(1.0 / 3.0 + 2.0 / 3.0 - 0.2 * math.log(2.0) + 2.0 * 1.625 / 9.0, rel=1e-5)


def test_probe_loss_metric_mode_keeps_metres():
    b = _one_frame_batch()
    pred = {
        "points": b["points_ref"].clone(),
        "points_conf": torch.ones(1, 1, 1, 2),
        "depth": b["depth"].clone(),
        "depth_conf": torch.ones(1, 1, 1, 2),
        "pose_enc": torch.from_numpy(geo.pose_to_encoding(np.eye(4), b["K"][0, 0].numpy(), 1, 2))[None, None],
    }
    total, _ = probe_loss(pred, b, ProbeLossConfig(scale_norm=ScaleNorm.NONE))
    assert total.item() == pytest.approx(0.0, abs=1e-6)
    _, terms = probe_loss(pred, b, ProbeLossConfig(scale_norm=ScaleNorm.GT))
    assert terms["points"].item() == pytest.approx((2.0 - 2.0 / 3.0 + 4.0 - 4.0 / 3.0) / 2.0, rel=1e-5)


def test_probe_loss_camera_translation_is_scale_normalised():
    b = _one_frame_batch()
    b["T_wc"] = torch.eye(4).repeat(1, 2, 1, 1)
    b["T_wc"][0, 1, 0, 3] = 3.0  # second camera 3 m to the right = 1 scene unit (scale 3)
    for k in ("points_ref", "depth", "valid", "K"):
        b[k] = torch.cat([b[k], b[k]], dim=1)
    enc = torch.from_numpy(geo.pose_to_encoding(np.eye(4), b["K"][0, 0].numpy(), 1, 2)).repeat(1, 2, 1)
    enc[0, 1, 0] = 1.0
    pred = {"points": b["points_ref"] / 3.0, "points_conf": torch.ones(1, 2, 1, 2), "depth": b["depth"] / 3.0,
            "depth_conf": torch.ones(1, 2, 1, 2), "pose_enc": enc}
    _, terms = probe_loss(pred, b)
    assert terms["camera"].item() == pytest.approx(0.0, abs=1e-7)
    assert terms["points"].item() == pytest.approx(0.0, abs=1e-6)


def test_verifier_loss_hand_computed():
    gt = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    pred = torch.tensor([[1.5, 2.0], [3.0, 3.0]])  # residuals [[.5, 0], [0, -1]]
    sigma = torch.tensor([[2.0, 1.0], [1.0, 0.5]])
    valid = torch.ones(2, 2, dtype=torch.bool)
    data = (2.0 * 0.5 + 0 + 0 + 0.5 * 1.0) / 4.0
    # forward differences of the residual, weighted by sigma of their first pixel
    gx = [2.0 * abs(0 - 0.5), 1.0 * abs(-1 - 0)]  # rows 0 and 1
    gy = [2.0 * abs(0 - 0.5), 1.0 * abs(-1 - 0)]  # cols 0 and 1
    grad = (sum(gx) + sum(gy)) / 4.0
    reg = (math.log(2.0) + 0 + 0 + math.log(0.5)) / 4.0
    got = verifier_loss(pred, sigma, gt, valid, alpha=0.3)
    assert got.item() == pytest.approx(data + grad - 0.3 * reg, rel=1e-6)


def test_verifier_loss_ignores_invalid_pixels():
    gt = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    pred = gt.clone()
    pred[1, 1] = 100.0
    valid = torch.ones(2, 2, dtype=torch.bool)
    valid[1, 1] = False
    assert verifier_loss(pred, torch.ones(2, 2), gt, valid).item() == pytest.approx(0.0, abs=1e-7)
    assert verifier_loss(pred, torch.ones(2, 2), gt, torch.ones(2, 2, dtype=torch.bool)).item() > 1.0


def _plane_scene(h=24, w=32, c=2.0, angle_deg=10.0, shift=(0.2, -0.1, 0.1)):
    """Frame 0 faces the plane z = c (constant depth); frame 1 is rotated about y and moved."""
    K = geo.intrinsics_from_fov(w, h, 60.0)
    T0 = np.eye(4)
    T1 = geo.make_transform(geo.axis_angle_to_matrix(np.array([0.0, 1.0, 0.0]), np.deg2rad(angle_deg)), np.array(shift))
    u, v = geo.pixel_grid(h, w)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    d_world = rays @ T1[:3, :3].T
    depth1 = (c - T1[2, 3]) / d_world[..., 2]  # ray parameter = z-depth since ray z = 1
    depth0 = np.full((h, w), c)
    depth = torch.tensor(np.stack([depth0, depth1])[None], dtype=torch.float64)
    Ks = torch.tensor(np.stack([K, K])[None], dtype=torch.float64)
    T_wc = torch.tensor(np.stack([T0, T1])[None], dtype=torch.float64)
    return depth, Ks, T_wc


def test_cross_view_warp_is_exact_on_perfect_depth():
    depth, K, T_wc = _plane_scene()
    T_src_tgt = torch.linalg.inv(T_wc[:, 0]) @ T_wc[:, 1]
    sampled, z, inside = warp_depth(depth[:, 1], depth[:, 0], K[:, 1], K[:, 0], T_src_tgt)
    assert inside.float().mean() > 0.6  # a real overlap is scored
    assert torch.allclose(sampled[inside], z[inside], atol=1e-9)
    loss = cross_view_consistency_loss(depth, K, T_wc, pairs=[(1, 0)])
    assert loss.item() == pytest.approx(0.0, abs=1e-9)


def test_cross_view_loss_hand_computed_offset():
    # pure sideways motion in front of a fronto-parallel plane: both depths constant
    depth, K, T_wc = _plane_scene(angle_deg=0.0, shift=(0.3, 0.0, 0.0))
    assert torch.allclose(depth[:, 1], torch.full_like(depth[:, 1], 2.0))
    bad = depth.clone()
    bad[:, 0] += 0.25  # frame 0 predicted 25 cm too far
    loss = cross_view_consistency_loss(bad, K, T_wc, pairs=[(1, 0)], occlusion_tol=None)
    assert loss.item() == pytest.approx(0.25, rel=1e-9)


def test_cross_view_loss_respects_valid_mask():
    depth, K, T_wc = _plane_scene()
    bad = depth.clone()
    bad[:, 0, :, :16] += 1.0
    valid = torch.ones_like(depth, dtype=torch.bool)
    assert cross_view_consistency_loss(bad, K, T_wc, valid=valid, pairs=[(1, 0)], occlusion_tol=None).item() > 0.1
    valid[:, 0, :, :17] = False  # the damaged half of frame 0 is masked out
    got = cross_view_consistency_loss(bad, K, T_wc, valid=valid, pairs=[(1, 0)], occlusion_tol=None)
    assert got.item() == pytest.approx(0.0, abs=1e-6)


def test_cross_view_loss_is_differentiable():
    depth, K, T_wc = _plane_scene()
    noisy = (depth + 0.05 * torch.rand_like(depth)).requires_grad_(True)
    loss = cross_view_consistency_loss(noisy, K, T_wc)
    loss.backward()
    assert loss.item() > 0
    assert noisy.grad.abs().sum() > 0


def test_global_alignment_loss_hand_computed():
    s = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    t = torch.tensor([[5.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])  # cos = 1, 0, -1
    assert global_alignment_loss(s, t).item() == pytest.approx((0.0 + 1.0 + 2.0) / 3.0, rel=1e-6)
