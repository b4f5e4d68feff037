"""The torch pose encoding (distill.nets.pose_enc) against vega_ros.geometry's numpy original."""

import numpy as np
import pytest
import torch

from distill.nets import pose_enc as pe
from vega_ros import geometry as geo


def _random_rotations(n, rng):
    q = rng.normal(size=(n, 4))
    R = geo.quat_to_matrix(q)
    # include the awkward ones: identity and 180-degree turns (w = 0)
    extra = [np.eye(3), geo.axis_angle_to_matrix(np.array([1.0, 0, 0]), np.pi),
             geo.axis_angle_to_matrix(np.array([0, 1.0, 1.0]), np.pi), geo.axis_angle_to_matrix(np.array([0, 0, 1.0]), np.pi)]
    return np.concatenate([R, np.stack(extra)])


def test_matrix_to_quat_matches_numpy_including_180_degree_turns():
    R = _random_rotations(64, np.random.default_rng(0))
    q_np = geo.matrix_to_quat(R)
    q_t = pe.matrix_to_quat(torch.from_numpy(R)).numpy()
    # q and -q are the same rotation; both sides canonicalise w >= 0, but at w = 0 the sign is free
    same = np.minimum(np.abs(q_np - q_t).max(-1), np.abs(q_np + q_t).max(-1))
    assert same.max() < 1e-9
    assert np.all(q_t[:, 3] >= 0)


def test_quat_to_matrix_matches_numpy():
    q = np.random.default_rng(1).normal(size=(32, 4))
    assert np.allclose(pe.quat_to_matrix(torch.from_numpy(q)).numpy(), geo.quat_to_matrix(q), atol=1e-12)


def _clip(rng, s=4, h=48, w=64):
    T_wc = np.stack([geo.make_transform(R, rng.normal(size=3)) for R in _random_rotations(s, rng)[:s]])
    K = np.stack([geo.intrinsics_from_fov(w, h, f, f + 10) for f in rng.uniform(40, 80, s)])
    return T_wc, K


def test_pose_to_encoding_and_back_match_numpy():
    rng = np.random.default_rng(2)
    h, w = 48, 64
    T_wc, K = _clip(rng)
    rel_np = geo.relative_pose(T_wc[0], T_wc)
    rel_t = pe.relative_to_reference(torch.from_numpy(T_wc)).numpy()
    assert np.allclose(rel_t, rel_np, atol=1e-12)
    enc_np = geo.pose_to_encoding(rel_np, K, h, w).astype(np.float64)
    enc_t = pe.pose_to_encoding(torch.from_numpy(rel_np), torch.from_numpy(K), h, w).numpy()
    assert np.allclose(enc_t, enc_np, atol=1e-6)  # numpy's encoding is float32
    T_back, K_back = pe.encoding_to_pose(torch.from_numpy(enc_t), h, w)
    T_np, K_np = geo.encoding_to_pose(enc_t, h, w)
    assert np.allclose(T_back.numpy(), T_np, atol=1e-12) and np.allclose(K_back.numpy(), K_np, atol=1e-9)
    assert np.allclose(T_back.numpy(), rel_np, atol=1e-9)
    assert np.allclose(K_back.numpy(), K, atol=1e-6)
    assert np.allclose(T_back[0].numpy(), np.eye(4), atol=1e-12)  # the reference is the identity


def test_se3_inverse_and_batch_axes():
    rng = np.random.default_rng(3)
    T = torch.from_numpy(np.stack([geo.make_transform(R, rng.normal(size=3)) for R in _random_rotations(6, rng)])).reshape(2, 5, 4, 4)
    eye = pe.se3_inverse(T) @ T
    assert torch.allclose(eye, torch.eye(4, dtype=T.dtype).expand_as(eye), atol=1e-12)
    assert pe.relative_to_reference(T).shape == (2, 5, 4, 4)


def test_encoding_is_differentiable():
    enc = torch.tensor([[0.1, 0.2, 0.3, 0.1, 0.2, 0.1, 0.9, 1.0, 1.2]], requires_grad=True)
    T, K = pe.encoding_to_pose(enc, 32, 32)
    (T.sum() + K.sum()).backward()
    assert torch.isfinite(enc.grad).all() and enc.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float32_roundtrip_precision(dtype):
    rng = np.random.default_rng(4)
    T_wc, K = _clip(rng)
    enc = pe.pose_to_encoding(pe.relative_to_reference(torch.from_numpy(T_wc).to(dtype)), torch.from_numpy(K).to(dtype), 48, 64)
    T_back, _ = pe.encoding_to_pose(enc, 48, 64)
    assert np.allclose(T_back.double().numpy(), geo.relative_pose(T_wc[0], T_wc), atol=1e-4 if dtype == torch.float32 else 1e-9)
