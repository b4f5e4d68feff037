"""The per-frame depth losses (student v2): SILog, gradient matching, metric log-L1 with confidence,
checked against known answers, with invalid depth masked and an empty batch refused by name."""

import math

import pytest
import torch

from distill.losses import (
    DepthLossWeights,
    EmptyDepthError,
    depth_mask,
    frame_depth_loss,
    gradient_matching_loss,
    log_l1_loss,
    silog_loss,
)


def _scene(b=2, h=16, w=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    depth = 0.5 + 2.0 * torch.rand(b, h, w, generator=g)
    return depth, torch.log(depth)


def test_silog_is_invariant_to_a_global_scale_and_zero_on_the_truth():
    depth, log_d = _scene()
    noisy = log_d + 0.1 * torch.randn(log_d.shape, generator=torch.Generator().manual_seed(1))
    base = silog_loss(noisy, depth)
    for factor in (0.1, 3.0, 250.0):
        assert float(silog_loss(noisy + math.log(factor), depth)) == pytest.approx(float(base), rel=1e-4)
    assert float(silog_loss(log_d + math.log(7.0), depth)) < 1e-2  # a scaled copy: sqrt(eps) only
    # lambda < 1 keeps a share of the scale error: sqrt(1 - lambda) * |log factor| for a scaled copy
    assert float(silog_loss(log_d + math.log(2.0), depth, lam=0.75)) == pytest.approx(0.5 * math.log(2.0), rel=1e-3)


def test_silog_hand_computed():
    depth = torch.ones(1, 1, 4)
    log_pred = torch.tensor([[[0.0, 0.0, 2.0, 2.0]]])  # r = 0, 0, 2, 2: mean 1, mean r^2 2 -> sqrt(2 - 1) = 1
    assert float(silog_loss(log_pred, depth)) == pytest.approx(1.0, abs=1e-5)


def test_gradient_matching_is_zero_for_a_scaled_copy_and_scores_a_ramp():
    depth, log_d = _scene()
    assert float(gradient_matching_loss(log_d + math.log(4.0), depth)) == pytest.approx(0.0, abs=1e-6)
    # r = 0.1 * column index: |dx r| = 0.1 on every x-difference, 0 along y; one scale
    h, w = depth.shape[-2:]
    ramp = 0.1 * torch.arange(w, dtype=torch.float32).expand(2, h, w)
    nx, ny = 2 * h * (w - 1), 2 * (h - 1) * w
    want = 0.1 * nx / (nx + ny)
    assert float(gradient_matching_loss(log_d + ramp, depth, scales=1)) == pytest.approx(want, rel=1e-5)


def test_metric_log_l1_hand_computed_and_confidence_weighted():
    depth = torch.full((1, 2, 2), 2.0)
    log_pred = torch.log(torch.tensor([[[2.0, 4.0], [1.0, 2.0]]]))  # |r| = 0, ln 2, ln 2, 0
    assert float(log_l1_loss(log_pred, depth)) == pytest.approx(math.log(2.0) / 2, rel=1e-6)
    conf = torch.tensor([[[1.0, 2.0], [2.0, 1.0]]])
    want = (2 * 2 * math.log(2.0) - 0.5 * 2 * math.log(2.0)) / 4  # mean(c |r| - 0.5 log c)
    assert float(log_l1_loss(log_pred, depth, conf=conf, alpha=0.5)) == pytest.approx(want, rel=1e-6)


def test_nan_zero_and_masked_depth_do_not_count():
    depth, log_d = _scene(b=1)
    bad = depth.clone()
    bad[0, :4] = float("nan")
    bad[0, 4:6] = 0.0
    bad[0, 6:8] = float("inf")
    wrong = log_d.clone()
    wrong[0, :8] = 50.0  # wildly wrong exactly where the truth is invalid
    for loss in (silog_loss, gradient_matching_loss, log_l1_loss):
        value = loss(wrong, bad)
        assert torch.isfinite(value) and float(value) < 1e-2, loss.__name__
    mask = torch.ones_like(depth, dtype=torch.bool)
    mask[0, :8] = False
    assert float(log_l1_loss(wrong, depth, valid=mask)) == pytest.approx(0.0, abs=1e-6)
    assert depth_mask(bad).sum() == depth[0, 8:].numel()


def test_an_empty_or_all_nan_batch_is_refused_by_name():
    log_pred = torch.zeros(2, 4, 4, requires_grad=True)
    for depth in (torch.zeros(2, 4, 4), torch.full((2, 4, 4), float("nan"))):
        with pytest.raises(EmptyDepthError, match="no valid depth pixel in a batch of 2"):
            frame_depth_loss(log_pred, depth)
    with pytest.raises(ValueError, match="must both be"):
        silog_loss(torch.zeros(2, 4, 4), torch.ones(2, 4, 5))


def test_frame_depth_loss_sums_its_terms_and_one_empty_sample_is_skipped():
    depth, log_d = _scene()
    depth[1] = 0.0  # sample 1 has no valid pixel: the others still train
    pred = (log_d + 0.05).requires_grad_(True)
    w = DepthLossWeights(silog=1.0, gradient=0.5, metric=2.0)
    total, terms = frame_depth_loss(pred, depth, weights=w)
    assert set(terms) == {"silog", "gradient", "metric"}
    assert float(total) == pytest.approx(float(terms["silog"] + 0.5 * terms["gradient"] + 2 * terms["metric"]), rel=1e-6)
    assert float(terms["metric"]) == pytest.approx(0.05, rel=1e-4)
    total.backward()
    assert torch.isfinite(pred.grad).all() and float(pred.grad[1].abs().sum()) == 0.0
