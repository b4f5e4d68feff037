"""The probe sample structure, frame selection, augmentation and the reprojection measure on exact synthetic scenes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from distill.data.augment import PhotometricAugment
from distill.data.reproject import reprojection_residuals
from distill.data.sample import SAMPLE_KEYS, make_sample, sample_frame_ids
from vega_ros.geometry import depth_to_points, look_at, make_transform, transform_points

H, W = 12, 16
K = np.array([[20.0, 0.0, W / 2], [0.0, 20.0, H / 2], [0.0, 0.0, 1.0]])


def _plane_depth(T_wc: np.ndarray, K: np.ndarray, h: int, w: int, z_world: float = 0.0) -> np.ndarray:
    """Exact z-depth of the world plane z = z_world seen by camera T_wc (0 where the ray misses it)."""
    v, u = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    d_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    d_world = d_cam @ T_wc[:3, :3].T
    t = (z_world - T_wc[2, 3]) / d_world[..., 2]  # ray parameter with z_cam = t
    return np.where(t > 0, t, 0.0).astype(np.float32)


def test_sample_keys_shapes_dtypes():
    S = 3
    rgb = np.random.default_rng(0).integers(0, 256, (S, H, W, 3), dtype=np.uint8)
    depth = np.full((S, H, W), 2.0, np.float32)
    depth[1, 0, 0] = 0.0
    depth[2, 1, 1] = np.nan
    T_wc = np.stack([np.eye(4)] * S)
    s = make_sample(rgb, depth, K, T_wc, [0, 5, 10], "clip")
    assert tuple(s.keys()) == SAMPLE_KEYS
    expect = {"images": ((S, 3, H, W), torch.float32), "depth": ((S, H, W), torch.float32), "valid": ((S, H, W), torch.bool),
              "K": ((S, 3, 3), torch.float32), "T_wc": ((S, 4, 4), torch.float32), "points_ref": ((S, H, W, 3), torch.float32),
              "frame_ids": ((S,), torch.int64)}
    for k, (shape, dtype) in expect.items():
        assert tuple(s[k].shape) == shape and s[k].dtype == dtype, k
    assert s["clip_id"] == "clip"
    assert torch.allclose(s["images"][0, :, 2, 3], torch.from_numpy(rgb[0, 2, 3] / 255.0).float())
    assert not s["valid"][1, 0, 0] and not s["valid"][2, 1, 1] and s["valid"].sum() == S * H * W - 2
    assert s["depth"][2, 1, 1] == 0 and torch.all(s["points_ref"][1, 0, 0] == 0)
    assert torch.isfinite(s["points_ref"]).all()


def test_points_ref_hand_computed():
    """Frame 1 sits 0.5 m right of frame 0 (same orientation): its points shift by +0.5 m in x."""
    depth = np.full((2, H, W), 2.0, np.float32)
    T_wc = np.stack([np.eye(4), make_transform(np.eye(3), [0.5, 0.0, 0.0])])
    s = make_sample(np.zeros((2, H, W, 3), np.uint8), depth, K, T_wc)
    # pixel (row 0, col 0) has its centre at (0.5, 0.5): x = (0.5 - 8) / 20 * 2 = -0.75, y = (0.5 - 6) / 20 * 2 = -0.55
    np.testing.assert_allclose(s["points_ref"][0, 0, 0].numpy(), [-0.75, -0.55, 2.0], atol=1e-6)
    np.testing.assert_allclose(s["points_ref"][1, 0, 0].numpy(), [-0.25, -0.55, 2.0], atol=1e-6)


def test_points_ref_agree_with_depth_through_T_wc():
    rng = np.random.default_rng(1)
    eyes = [np.array([1.0, -1.0, 1.2]), np.array([0.2, -1.4, 0.9]), np.array([-1.1, -0.8, 1.5])]
    T_wc = np.stack([look_at(e, rng.normal(0, 0.05, 3)) for e in eyes])
    depth = np.stack([_plane_depth(T, K, H, W) for T in T_wc])
    s = make_sample(np.zeros((3, H, W, 3), np.uint8), depth, K, T_wc)
    for k in range(3):
        world_from_ref = transform_points(T_wc[0], s["points_ref"][k].numpy().astype(np.float64))
        world_direct = transform_points(T_wc[k], depth_to_points(depth[k], K).astype(np.float64))
        np.testing.assert_allclose(world_from_ref, world_direct, atol=1e-5)
        np.testing.assert_allclose(world_direct[..., 2], 0.0, atol=1e-5)  # everything lies on the plane


def test_make_sample_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="images"):
        make_sample(np.zeros((2, H, W + 1, 3), np.uint8), np.ones((2, H, W)), K, np.stack([np.eye(4)] * 2))
    with pytest.raises(ValueError, match="T_wc"):
        make_sample(np.zeros((2, H, W, 3), np.uint8), np.ones((2, H, W)), K, np.stack([np.eye(4)] * 3))


@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 60), num=st.integers(1, 6), gap=st.integers(1, 10), seed=st.integers(0, 2**32 - 1))
def test_sample_frame_ids_respect_gap(n, num, gap, seed):
    rng = np.random.default_rng(seed)
    if (num - 1) * gap + 1 > n:
        with pytest.raises(ValueError):
            sample_frame_ids(n, num, gap, rng)
        return
    f = sample_frame_ids(n, num, gap, rng)
    assert f.shape == (num,) and f.dtype == np.int64
    assert f[0] >= 0 and f[-1] < n and np.all(np.diff(f) >= gap)


def test_sample_frame_ids_cover_all_choices():
    rng = np.random.default_rng(0)
    seen = {tuple(sample_frame_ids(24, 4, 5, rng)) for _ in range(5000)}
    assert len(seen) == 495  # C(24 - 15 + 3, 4): every valid set is reachable


def test_augmentation_changes_images_only():
    rng = np.random.default_rng(2)
    depth = rng.uniform(0.5, 2.0, (4, H, W)).astype(np.float32)
    s = make_sample(rng.integers(0, 256, (4, H, W, 3), dtype=np.uint8), depth, K, np.stack([np.eye(4)] * 4))
    out = PhotometricAugment()(s, torch.Generator().manual_seed(0))
    assert out.keys() == s.keys()
    assert not torch.equal(out["images"], s["images"])
    assert out["images"].min() >= 0 and out["images"].max() <= 1 and out["images"].shape == s["images"].shape
    for k in ("depth", "valid", "K", "T_wc", "points_ref", "frame_ids"):
        assert torch.equal(out[k], s[k]), k


def test_reprojection_residuals_zero_for_exact_views_and_large_for_wrong_pose():
    h, w = 96, 128
    Kb = np.array([[120.0, 0, w / 2], [0, 120.0, h / 2], [0, 0, 1.0]])
    T_i = look_at([0.6, -0.7, 1.2], [0, 0, 0])
    T_j = look_at([-0.3, -0.9, 1.1], [0.1, 0, 0])
    d_i, d_j = _plane_depth(T_i, Kb, h, w), _plane_depth(T_j, Kb, h, w)
    r = reprojection_residuals(d_i, Kb, T_i, d_j, Kb, T_j)
    assert r.size > 1000
    assert np.median(np.abs(r)) < 1e-5  # inverse-depth interpolation is exact on a plane
    T_bad = T_j.copy()
    T_bad[2, 3] += 0.01  # 1 cm up
    r_bad = reprojection_residuals(d_i, Kb, T_i, d_j, Kb, T_bad)
    assert np.median(np.abs(r_bad)) > 3e-3
    # integer pixel centres (a half-pixel shift of K) are also caught
    K_shift = Kb.copy()
    K_shift[:2, 2] -= 0.5
    r_shift = reprojection_residuals(d_i, K_shift, T_i, d_j, K_shift, T_j)
    assert np.median(np.abs(r_shift)) > 10 * max(np.median(np.abs(r)), 1e-7)
