"""The procedural scene generator: determinism, depth against ray casts, cross-view consistency,
the held-out family's isolation, robosuite's reserved environments, resume after a kill, bad scenes."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mujoco
import numpy as np
import pytest

from distill.data.offscreen import RenderError
from distill.data.procedural import clips as proc_clips
from distill.data.procedural.assets import (
    ROBOTS,
    _package_dir,
    asset_pool,
    check_not_reserved,
    libero_objects,
    libero_textures,
)
from distill.data.procedural.config import SPLITS, ProceduralConfig, load_config
from distill.data.procedural.mjcf import build_scene
from distill.data.procedural.render import run
from distill.data.procedural.scene import ProceduralScene
from distill.data.reproject import reprojection_residuals
from distill.data.shards import ShardReader, load_index
from distill.data.sources import open_clips
from vega_ros.geometry import look_at

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "config" / "data" / "procedural_tiny.yaml"
W, H = 72, 56


def _scene(seed: int, family: str = "train", **changes) -> ProceduralScene:
    cfg = ProceduralConfig(width=W, height=H, frames=6, objects=(3, 5), robot_counts=(1, 1), texture_px=32, **changes)
    rng = np.random.default_rng(seed)
    spec, info = build_scene(cfg, family, rng)
    return ProceduralScene(spec, info, W, H, False, rng)


@pytest.fixture(scope="module")
def scene():
    sc = _scene(11)
    yield sc
    sc.close()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("procedural_tiny")
    run(load_config(TINY), out, workers=1, progress=False)
    return out


def _cfg(scene: ProceduralScene) -> ProceduralConfig:
    return ProceduralConfig(width=scene.width, height=scene.height, frames=6)


# ---------------------------------------------------------------- determinism


def test_same_seed_same_scene_and_clip():
    a, b = _scene(5), _scene(5)
    try:
        for name in ("geom_size", "geom_pos", "geom_rgba", "body_pos", "cam_fovy", "light_pos"):
            np.testing.assert_array_equal(getattr(a.model, name), getattr(b.model, name), err_msg=name)
        assert a.info.to_meta() == b.info.to_meta()
        ca = proc_clips.render_clip(a, "orbit", 99, _cfg(a))
        cb = proc_clips.render_clip(b, "orbit", 99, _cfg(b))
        np.testing.assert_array_equal(ca.rgb, cb.rgb)
        np.testing.assert_array_equal(ca.depth, cb.depth)
        np.testing.assert_array_equal(ca.T_wc, cb.T_wc)
    finally:
        a.close()
        b.close()
    c = _scene(6)
    try:
        assert c.model.ngeom != a.model.ngeom or not np.array_equal(c.model.geom_size, a.model.geom_size)
    finally:
        c.close()


# ---------------------------------------------------------------- exact depth


def _raycast_depth(scene: ProceduralScene, K, T_wc, rows, cols) -> np.ndarray:
    groups = np.zeros(6, np.uint8)
    groups[[1, 2]] = 1
    out = np.zeros(len(rows))
    geom = np.zeros(1, np.int32)
    for n, (i, j) in enumerate(zip(rows, cols)):
        d_cam = np.linalg.solve(K, [j + 0.5, i + 0.5, 1.0])
        d_cam /= np.linalg.norm(d_cam)
        t = mujoco.mj_ray(scene.model, scene.data, T_wc[:3, 3], T_wc[:3, :3] @ d_cam, groups, 1, -1, geom)
        out[n] = t * d_cam[2] if t >= 0 else 0.0
    return out


def _check_against_rays(scene: ProceduralScene, camera_id: int) -> None:
    rgb, depth, K, T_wc = scene.render(camera_id)
    assert rgb.shape == (H, W, 3) and depth.shape == (H, W)
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, H, 300), rng.integers(0, W, 300)
    ray = _raycast_depth(scene, K, T_wc, rows, cols)
    both = (ray > 0) & (depth[rows, cols] > 0)
    assert np.mean((ray > 0) == (depth[rows, cols] > 0)) > 0.97  # hit and drawn agree (silhouettes aside)
    assert both.mean() > 0.5
    err = np.abs(ray[both] - depth[rows, cols][both])
    assert np.median(err) < 2e-4, f"median |render - ray| = {np.median(err) * 1e3:.3f} mm"
    assert np.mean(err < 1e-3) > 0.9


def test_free_camera_depth_matches_ray_casts(scene):
    target = scene.object_points().mean(0)
    T_wc = look_at(target + np.array([0.6, -0.5, 0.45]), target)
    scene.pose_free_camera(T_wc, 70.0)
    K, T_back = scene.camera_pose(scene.free_camera_id)
    np.testing.assert_allclose(T_back, T_wc, atol=1e-9)
    np.testing.assert_allclose(K[1, 1], 0.5 * H / np.tan(np.deg2rad(70.0) / 2))
    _check_against_rays(scene, scene.free_camera_id)


def test_close_up_and_wrist_depth_match_ray_casts(scene):
    target = scene.object_points()[0]
    scene.pose_free_camera(look_at(target + np.array([0.12, 0.1, 0.12]), target), 40.0)
    _check_against_rays(scene, scene.free_camera_id)
    scene.set_arm_qpos(scene.ready + 0.1)
    _check_against_rays(scene, scene.camera_id(scene.info.robots[0]["camera"]))


@pytest.mark.parametrize("kind", ["orbit", "top_down", "handheld", "close_up"])
def test_static_clips_reproject_across_frames(scene, kind):
    clip = proc_clips.render_clip(scene, kind, 1234, dataclasses.replace(_cfg(scene), frames=12))
    assert clip.meta["static"]
    for j in (1, 3):
        r = reprojection_residuals(clip.depth[0], clip.K[0], clip.T_wc[0], clip.depth[j], clip.K[j], clip.T_wc[j])
        assert r.size > 50
        assert np.median(np.abs(r)) < 5e-4, f"{kind} 0->{j}: median {np.median(np.abs(r)) * 1e3:.3f} mm"


def test_fov_range_and_arm_motion(scene):
    cfg = _cfg(scene)
    clip = proc_clips.render_clip(scene, "wrist", 7, cfg)
    fov = 2 * np.degrees(np.arctan(clip.K[:, 1, 2] / clip.K[:, 1, 1]))
    assert np.all((fov >= cfg.fov_y_deg[0] - 1e-6) & (fov <= cfg.fov_y_deg[1] + 1e-6))
    assert not clip.meta["static"]
    assert np.linalg.norm(clip.T_wc[0, :3, 3] - clip.T_wc[-1, :3, 3]) > 1e-3  # the wrist camera moved with the arm


def test_nan_and_empty_depth_refused():
    cfg = ProceduralConfig(min_valid_fraction=0.2)
    with pytest.raises(RenderError, match="non-finite"):
        proc_clips._check_frame(np.full((4, 4), np.nan, np.float32), cfg, 0)
    with pytest.raises(RenderError, match="valid depth"):
        proc_clips._check_frame(np.zeros((4, 4), np.float32), cfg, 3)


# ---------------------------------------------------------------- held-out family


def _heldout_assets(cfg: ProceduralConfig) -> set[str]:
    objs = {f"{o.source}/{o.name}" for o in libero_objects() if asset_pool(o.name, cfg.heldout_percent, "obj-") == "heldout"}
    texs = {t.name for t in libero_textures() if asset_pool(t.name, cfg.heldout_percent, "tex-") == "heldout"}
    return objs | texs | {f"builtin:{cfg.heldout_builtin}"}


def test_families_use_disjoint_assets_over_many_seeds():
    cfg = ProceduralConfig()
    held = _heldout_assets(cfg)
    assert len(held) > 5
    for seed in range(12):
        for family in ("train", "heldout"):
            _, info = build_scene(cfg, family, np.random.default_rng(seed))
            meta = info.to_meta()
            used = set(meta["objects"]) | set(meta["textures"])
            named = {u for u in used if not u.startswith("primitive:") and not u.startswith("builtin:")}
            if family == "train":
                assert not (used & held), f"seed {seed}: held-out assets {used & held} in a training scene"
            else:
                assert named <= held, f"seed {seed}: training assets {named - held} in a held-out scene"


def test_index_keeps_heldout_family_out_of_train_and_val(tiny_dir):
    cfg = load_config(TINY)
    index = load_index(tiny_dir)
    rows = index["clips"]
    assert {s: sum(r["split"] == s for r in rows) for s in SPLITS} == cfg.clips
    assert index["heldout_family"]["split"] == "heldout_family"
    held = set(index["heldout_family"]["objects"]) | set(index["heldout_family"]["textures"])
    assert held == _heldout_assets(cfg)
    for r in rows:
        used = set(r["scene"]["objects"]) | set(r["scene"]["textures"])
        if r["split"] == "heldout_family":
            assert r["family"] == "heldout"
        else:
            assert r["family"] == "train" and not (used & held), r["clip_id"]
    scenes = {s: set(index["splits"][s]) for s in SPLITS}
    for a in SPLITS:
        for b in SPLITS:
            assert a == b or not (scenes[a] & scenes[b])
    assert index["skipped"]["count"] == 0


def test_plain_dir_spec_reads_every_split(tiny_dir):
    for split in ("train", "heldout_family"):
        items = open_clips(str(tiny_dir), split=split, num_frames=2, min_gap=2)
        s = items[0]
        assert s["images"].shape == (2, 3, 48, 64) and s["depth"].shape == (2, 48, 64)
        assert s["valid"].float().mean() > 0.2


# ---------------------------------------------------------------- reserved robosuite environments


def test_reserved_robosuite_paths_refused():
    rs = _package_dir("robosuite")
    for p in (rs / "environments" / "manipulation" / "lift.py", rs / "models" / "assets" / "arenas" / "table_arena.xml",
              rs / "models" / "assets" / "objects" / "can.xml"):
        with pytest.raises(ValueError, match="reserved"):
            check_not_reserved(p)
    assert check_not_reserved(rs / "models" / "assets" / "robots" / "panda" / "robot.xml")


def test_generator_never_builds_robosuite_environments():
    """A whole render in a fresh interpreter imports no robosuite environment, arena or task object."""
    code = (
        "import os, sys, numpy as np; os.environ.setdefault('MUJOCO_GL', 'egl')\n"
        "from distill.data.procedural.config import ProceduralConfig\n"
        "from distill.data.procedural.mjcf import build_scene\n"
        "from distill.data.procedural.scene import ProceduralScene\n"
        "from distill.data.procedural.clips import render_clip\n"
        f"cfg = ProceduralConfig(width=32, height=32, frames=3, robots={ROBOTS!r}, robot_counts=(2, 2))\n"
        "rng = np.random.default_rng(0); spec, info = build_scene(cfg, 'train', rng)\n"
        "sc = ProceduralScene(spec, info, 32, 32, False, rng); render_clip(sc, 'fixed', 0, cfg); sc.close()\n"
        "reserved = ('robosuite.environments', 'robosuite.models.arenas', 'robosuite.models.objects', 'robosuite.models.tasks')\n"
        "bad = [m for m in sys.modules if m.startswith(reserved)]\n"
        "print('RESERVED', bad)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "RESERVED []" in out.stdout
    src = "\n".join(p.read_text() for p in (ROOT / "distill" / "data" / "procedural").glob("*.py"))
    assert "robosuite.environments" not in src and "suite.make" not in src


# ---------------------------------------------------------------- resume and bad input


def test_resume_after_kill(tmp_path):
    out = tmp_path / "run"
    overrides = ["clips={train: 4}"]  # two scenes of two clips
    cmd = [sys.executable, "-m", "distill.data.procedural.render", "--config", str(TINY), "--set", overrides[0], "--out", str(out), "--no-progress"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 90
    while time.time() < deadline and not list(out.glob("*/*.npz")) and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = sorted(out.glob("*/*.npz"))
    assert first, "no shard was written before the kill"
    assert not (out / "index.json").exists()
    stamps = {p: p.stat().st_mtime_ns for p in first}
    index = run(load_config(TINY, overrides), out, workers=1, progress=False)
    assert len(index["clips"]) == 4
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # finished shards were kept, not redone
    for p in out.glob("*/*.npz"):
        with ShardReader(p) as r:
            r.clip(0)


def test_bad_scene_is_skipped_and_counted(tmp_path, monkeypatch):
    """A scene whose MJCF does not compile is retried with a derived seed; the failed try is counted with its seed."""
    import distill.data.procedural.mjcf as mjcf

    real = mjcf.build_scene
    calls = {"n": 0}

    def first_try_broken(cfg, family, rng):
        spec, info = real(cfg, family, rng)
        calls["n"] += 1
        if calls["n"] == 1:
            spec.worldbody.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.1, 0.1, 0.1], material="no_such_material")
        return spec, info

    monkeypatch.setattr(mjcf, "build_scene", first_try_broken)
    cfg = load_config(TINY, ["clips={train: 2}"])
    from distill.data.procedural.render import make_plan, render_scene

    res = render_scene(str(tmp_path / "bad"), cfg, make_plan(cfg)[0])
    assert res["clips"] == 2
    assert len(res["skips"]) == 1 and res["skips"][0]["what"] == "scene" and "no_such_material" in res["skips"][0]["reason"]
    assert isinstance(res["skips"][0]["seed"], int)
    logged = json.loads((tmp_path / "bad" / "train" / "train-s00000.skips.json").read_text())
    assert logged["skips"][0]["seed"] == res["skips"][0]["seed"] and not logged["scene_failed"]


def test_empty_renders_are_skipped_not_fatal(tmp_path):
    """Every frame refused (min_valid_fraction > 1): each clip try is counted, the scene is marked failed, the run ends."""
    cfg = load_config(TINY, ["clips={train: 2}", "min_valid_fraction=1.01", "attempts=2"])
    index = run(cfg, tmp_path / "empty", workers=1, progress=False)
    assert index["clips"] == []
    assert index["skipped"]["count"] == 2 * 2  # clips x attempts
    assert all(isinstance(s["seed"], int) and "valid depth" in s["reason"] for s in index["skipped"]["items"])
    again = run(cfg, tmp_path / "empty", workers=1, progress=False)  # resume: failed scenes are not retried forever
    assert again["skipped"]["count"] == index["skipped"]["count"]
