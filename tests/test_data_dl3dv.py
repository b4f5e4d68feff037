"""DL3DV reader on a tiny scene written in the real layout (nerfstudio transforms.json, images_4 frames).

Cameras are defined the nerfstudio way (camera-to-world, OpenGL axes: x right, y up, z back; rays
through pixel centres), independently of the reader's conversion.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from distill.data.dl3dv import Dl3dvDataset, Dl3dvScene
from distill.data.sample import SAMPLE_KEYS
from distill.data.sources import open_clips, scene_split
from vega_ros.geometry import project_points, se3_inverse, transform_points

FULL_W, FULL_H, DOWN = 96, 72, 4
FX, FY, CX, CY = 80.0, 78.0, 49.0, 35.0  # at full resolution
N_FRAMES = 10


def _c2w_gl(eye, target):
    f = np.asarray(target, float) - eye
    f /= np.linalg.norm(f)
    r = np.cross(f, [0.0, 0.0, 1.0])
    r /= np.linalg.norm(r)
    u = np.cross(r, f)
    M = np.eye(4)
    M[:3, :3] = np.stack([r, u, -f], 1)
    M[:3, 3] = eye
    return M


def _nerfstudio_project(X, c2w, scale):
    """Pixels of world points by nerfstudio's camera model (inverse of its ray generation)."""
    pc = (X - c2w[:3, 3]) @ c2w[:3, :3]  # camera coordinates, OpenGL axes
    u = FX * scale * pc[:, 0] / -pc[:, 2] + CX * scale
    v = FY * scale * -pc[:, 1] / -pc[:, 2] + CY * scale
    return np.stack([u, v], 1)


@pytest.fixture(scope="module")
def dl3dv_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dl3dv")
    scene = root / "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
    (scene / "images_4").mkdir(parents=True)
    frames = []
    rng = np.random.default_rng(0)
    for n in range(N_FRAMES):
        eye = np.array([1.0 - 0.15 * n, -1.0, 1.0])
        name = f"frame_{n + 1:05d}.png"
        img = np.zeros((FULL_H // DOWN, FULL_W // DOWN, 3), np.uint8)
        img[..., 2] = n  # red channel (BGR on disk) = frame number
        img[..., 1] = rng.integers(0, 256, img.shape[:2])
        cv2.imwrite(str(scene / "images_4" / name), img)
        frames.append({"file_path": f"images/{name}", "transform_matrix": _c2w_gl(eye, [0.0, 0.0, 0.0]).tolist()})
    meta = {"w": FULL_W, "h": FULL_H, "fl_x": FX, "fl_y": FY, "cx": CX, "cy": CY,
            "k1": 0.0, "k2": 0.0, "p1": 0.0, "p2": 0.0, "camera_model": "OPENCV", "frames": frames[::-1]}
    (scene / "transforms.json").write_text(json.dumps(meta))
    return root


def test_projection_matches_nerfstudio_definition(dl3dv_root):
    scene = Dl3dvScene(next(dl3dv_root.iterdir()))
    X = np.random.default_rng(1).uniform(-0.3, 0.3, (40, 3))
    for k in (0, 4, 9):
        rgb, depth, K, T_wc = scene.load_frame(k)
        assert rgb.shape == (FULL_H // DOWN, FULL_W // DOWN, 3) and rgb[0, 0, 0] == k  # sorted frames, RGB order
        uv, z = project_points(transform_points(se3_inverse(T_wc), X), K)
        assert np.all(z > 0)
        c2w = np.array(scene.frames[k]["transform_matrix"])
        np.testing.assert_allclose(uv, _nerfstudio_project(X, c2w, 1.0 / DOWN), atol=1e-9)
        assert not depth.any()


def test_sample_has_no_depth_and_the_standard_structure(dl3dv_root):
    ds = Dl3dvDataset(dl3dv_root, num_frames=4, min_gap=2, size_hw=(16, 16))
    s = ds[0]
    assert tuple(s["images"].shape) == (4, 3, 16, 16)
    assert not s["valid"].any() and not s["points_ref"].any()
    assert np.all(np.diff(s["frame_ids"].numpy()) >= 2)
    R = s["T_wc"][:, :3, :3].numpy().astype(np.float64)
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-6)
    assert np.all(np.linalg.det(R) > 0)


def test_data_spec_opens_dl3dv_split_by_scene_and_the_probe_runs_on_it(dl3dv_root, tmp_path):
    root = tmp_path / "dl3dv"
    scene = next(dl3dv_root.iterdir())
    for i in range(8):  # nine scenes (copies of the fixture's) under other names
        shutil.copytree(scene, root / (scene.name if i == 0 else f"scene{i:02d}"))
    train = open_clips(f"dl3dv:{root}:16x16", "train", num_frames=4, min_gap=2, samples_per_clip=3)
    test = open_clips(f"dl3dv:{root}:16x16", "test", num_frames=4, min_gap=2)
    names = {"train": {p.name for p in train.scenes}, "test": {p.name for p in test.scenes}}
    assert names["train"] and names["test"] and not names["train"] & names["test"]
    assert names["train"] | names["test"] == {p.name for p in root.iterdir()}
    assert all(scene_split(n) == split for split, ns in names.items() for n in ns)
    assert len(train) == 3 * len(names["train"])
    s = test[0]
    assert set(SAMPLE_KEYS) <= set(s) and tuple(s["images"].shape) == (4, 3, 16, 16) and not s["valid"].any()
    # no depth: the probe still trains (pose term) and scores pose; the depth metrics say "no data"
    from distill.probe import main

    out = tmp_path / "probe"
    assert main(["--encoder", "pixels", "--data", f"dl3dv:{root}:16x16", "--out", str(out), "--steps", "2",
                 "--min-gap", "2", "--config", "config/probe/tiny.yaml"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["test"]["clips"] == len(names["test"]) and np.isfinite(res["test"]["auc@30"])
    assert res["train"]["final"] is not None and np.isfinite(res["train"]["final"]["loss"])
