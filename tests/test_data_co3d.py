"""CO3Dv2 reader on a tiny sequence written in the real layout, with cameras defined the PyTorch3D way.

The fixture builds cameras, depth and projections only from PyTorch3D's definitions (row-vector
``X_view = X_world @ R + T``, view axes +X left / +Y up / +Z forward, NDC intrinsics with
``s = min(W, H) / 2``), never from the reader's conversion, so the test checks the conversion.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from distill.data.co3d import Co3dDataset, Co3dSequence, co3d_intrinsics, list_sequences
from distill.data.sample import SAMPLE_KEYS
from distill.data.sources import open_clips, scene_split
from vega_ros.geometry import project_points, se3_inverse, transform_points

W, H = 96, 72
S_NDC = min(W, H) / 2.0
SCALE_ADJ = 2.0


def _p3d_camera(eye, target):
    """PyTorch3D ``(R, T)`` of a camera at ``eye`` looking at ``target`` (world z up)."""
    z = np.asarray(target, float) - eye
    z /= np.linalg.norm(z)
    y = np.array([0.0, 0.0, 1.0]) - z[2] * z
    y /= np.linalg.norm(y)
    x = np.cross(y, z)  # +X left, +Y up, +Z forward, right-handed
    R = np.stack([x, y, z], 1)  # columns: view axes in world
    T = -np.asarray(eye, float) @ R
    return R, T


def _p3d_project(X, R, T, f, p):
    """Pixel (u, v) of world points ``X [N, 3]`` by PyTorch3D's definitions."""
    Xv = X @ R + T
    ndc = np.stack([f[0] * Xv[:, 0] / Xv[:, 2] + p[0], f[1] * Xv[:, 1] / Xv[:, 2] + p[1]], 1)
    return np.stack([W / 2.0 - ndc[:, 0] * S_NDC, H / 2.0 - ndc[:, 1] * S_NDC], 1)


def _p3d_plane_depth(R, T, f, p):
    """z-depth of the world plane z = 0 at every pixel centre, by PyTorch3D's definitions."""
    v, u = np.meshgrid(np.arange(H) + 0.5, np.arange(W) + 0.5, indexing="ij")
    ndc_x, ndc_y = (W / 2.0 - u) / S_NDC, (H / 2.0 - v) / S_NDC
    d_view = np.stack([(ndc_x - p[0]) / f[0], (ndc_y - p[1]) / f[1], np.ones_like(u)], -1)
    d_world = d_view @ R.T
    C = -T @ R.T  # camera centre: X_view = 0
    return (-C[2] / d_world[..., 2]).astype(np.float32)


CAMERAS = [  # (eye, target, focal_ndc, principal_ndc)
    (np.array([0.9, -0.8, 1.1]), np.array([0.0, 0.0, 0.0]), (1.6, 1.5), (0.05, -0.03)),
    (np.array([0.2, -1.2, 0.9]), np.array([0.1, 0.0, 0.0]), (1.4, 1.45), (0.0, 0.02)),
    (np.array([-0.7, -0.9, 1.2]), np.array([0.0, 0.1, 0.0]), (1.7, 1.7), (-0.04, 0.0)),
]
N_FRAMES = 12


@pytest.fixture(scope="module")
def co3d_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("co3d")
    cat, seq = "teddybear", "34_1479_4753"
    anns = []
    rng = np.random.default_rng(0)
    for n in range(N_FRAMES):
        eye, target, f, p = CAMERAS[n % len(CAMERAS)]
        eye = eye + 0.02 * n
        R, T = _p3d_camera(eye, target)
        depth = _p3d_plane_depth(R, T, f, p)
        rel = f"{cat}/{seq}"
        for d in ("images", "depths", "depth_masks"):
            (root / rel / d).mkdir(parents=True, exist_ok=True)
        name = f"frame{n + 1:06d}"
        cv2.imwrite(str(root / rel / "images" / f"{name}.jpg"), rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        cv2.imwrite(str(root / rel / "depths" / f"{name}.jpg.geometric.png"), (depth / SCALE_ADJ).astype(np.float16).view(np.uint16))
        mask = np.full((H, W), 255, np.uint8)
        mask[:, :3] = 0  # the left 3 columns have no depth
        cv2.imwrite(str(root / rel / "depth_masks" / f"{name}.png"), mask)
        anns.append({
            "sequence_name": seq, "frame_number": n, "frame_timestamp": n / 30.0,
            "image": {"path": f"{rel}/images/{name}.jpg", "size": [H, W]},
            "depth": {"path": f"{rel}/depths/{name}.jpg.geometric.png", "scale_adjustment": SCALE_ADJ,
                      "mask_path": f"{rel}/depth_masks/{name}.png"},
            "mask": {"path": f"{rel}/masks/{name}.png", "mass": 100.0},
            "viewpoint": {"R": R.tolist(), "T": T.tolist(), "focal_length": list(f), "principal_point": list(p),
                          "intrinsics_format": "ndc_isotropic"},
            "meta": {"frame_type": "test_known", "frame_splits": ["singlesequence_teddybear_test_0_known"]},
        })
    with gzip.open(root / cat / "frame_annotations.jgz", "wt") as fh:
        json.dump(anns[::-1], fh)  # unsorted on purpose
    return root


def test_lists_sequences_sorted_by_frame(co3d_root):
    assert list_sequences(co3d_root) == [("teddybear", "34_1479_4753")]
    seq = Co3dSequence(co3d_root, "teddybear", "34_1479_4753")
    assert len(seq) == N_FRAMES and [a["frame_number"] for a in seq.frames] == list(range(N_FRAMES))


def test_projection_matches_pytorch3d_definition(co3d_root):
    seq = Co3dSequence(co3d_root, "teddybear", "34_1479_4753")
    X = np.random.default_rng(1).uniform(-0.3, 0.3, (50, 3))
    for k in range(3):
        _, _, K, T_wc = seq.load_frame(k)
        a = seq.frames[k]["viewpoint"]
        uv_p3d = _p3d_project(X, np.array(a["R"]), np.array(a["T"]), a["focal_length"], a["principal_point"])
        uv, z = project_points(transform_points(se3_inverse(T_wc), X), K)
        assert np.all(z > 0)
        np.testing.assert_allclose(uv, uv_p3d, atol=1e-9)


def test_depth_points_land_on_the_world_plane(co3d_root):
    seq = Co3dSequence(co3d_root, "teddybear", "34_1479_4753")
    s = seq.sample([0, 5, 11])
    assert s["valid"][:, :, :3].sum() == 0 and s["valid"][:, :, 3:].all()  # the depth mask is honoured
    for k in range(3):
        world = transform_points(s["T_wc"][0].numpy().astype(np.float64), s["points_ref"][k].numpy().astype(np.float64))
        on_plane = np.abs(world[..., 2][s["valid"][k].numpy()])
        assert np.max(on_plane) < 3e-3  # float16 depth storage: ~1e-3 relative


def test_dataset_fits_size_and_keeps_geometry(co3d_root):
    ds = Co3dDataset(co3d_root, num_frames=3, min_gap=4, size_hw=(40, 40))
    s = ds[0]
    assert tuple(s["images"].shape) == (3, 3, 40, 40) and tuple(s["points_ref"].shape) == (3, 40, 40, 3)
    assert s["valid"].float().mean() > 0.8
    assert np.all(np.diff(s["frame_ids"].numpy()) >= 4)
    for k in range(3):
        world = transform_points(s["T_wc"][0].numpy().astype(np.float64), s["points_ref"][k].numpy().astype(np.float64))
        assert np.max(np.abs(world[..., 2][s["valid"][k].numpy()])) < 3e-3


def test_ndc_formats_agree_on_square_images_and_differ_otherwise():
    K_iso = co3d_intrinsics((1.5, 1.5), (0.1, -0.1), (40, 40), "ndc_isotropic")
    K_norm = co3d_intrinsics((1.5, 1.5), (0.1, -0.1), (40, 40), "ndc_norm_image_bounds")
    np.testing.assert_allclose(K_iso, K_norm)
    np.testing.assert_allclose(K_iso, [[30.0, 0, 18.0], [0, 30.0, 22.0], [0, 0, 1]])
    K_iso = co3d_intrinsics((1.5, 1.5), (0.0, 0.0), (30, 40), "ndc_isotropic")
    K_norm = co3d_intrinsics((1.5, 1.5), (0.0, 0.0), (30, 40), "ndc_norm_image_bounds")
    assert K_iso[0, 0] == K_iso[1, 1] == 22.5 and K_norm[0, 0] == 30.0 and K_norm[1, 1] == 22.5


@pytest.fixture()
def co3d_many(co3d_root, tmp_path) -> Path:
    """Nine sequences: the fixture's category and eight more whose annotations point at its frames."""
    root = tmp_path / "co3d"
    shutil.copytree(co3d_root, root)
    for i in range(8):
        (root / f"category{i}").mkdir()
        shutil.copy(root / "teddybear" / "frame_annotations.jgz", root / f"category{i}" / "frame_annotations.jgz")
    return root


def test_data_spec_opens_co3d_split_by_sequence(co3d_many):
    every = list_sequences(co3d_many)
    train = open_clips(f"co3d:{co3d_many}:40x40", "train", num_frames=3, min_gap=4, samples_per_clip=2)
    test = open_clips(f"co3d:{co3d_many}:40x40", "test", num_frames=3, min_gap=4)
    names = {split: {f"{c}/{s}" for c, s in ds.sequences} for split, ds in (("train", train), ("test", test))}
    assert names["train"] and names["test"] and not names["train"] & names["test"]
    assert names["train"] | names["test"] == {f"{c}/{s}" for c, s in every}
    assert all(scene_split(n) == split for split, ns in names.items() for n in ns)
    assert len(train) == 2 * len(names["train"])
    s = test[0]
    assert set(SAMPLE_KEYS) <= set(s) and tuple(s["images"].shape) == (3, 3, 40, 40)
    assert s["images"].dtype == torch.float32 and tuple(s["K"].shape) == (3, 3, 3) and tuple(s["T_wc"].shape) == (3, 4, 4)
    assert s["valid"].float().mean() > 0.8


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_probe_runs_on_a_co3d_spec(co3d_many, tmp_path):
    from distill.probe import main

    out = tmp_path / "probe"
    assert main(["--encoder", "pixels", "--data", f"co3d:{co3d_many}:32x32", "--out", str(out), "--steps", "2",
                 "--min-gap", "3", "--config", "config/probe/tiny.yaml"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["data"] == f"co3d:{co3d_many}:32x32" and res["test"]["clips"] >= 1
    assert np.isfinite(res["test"]["depth_abs_rel"]) and np.isfinite(res["test"]["auc@30"])
