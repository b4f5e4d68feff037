"""The LIBERO renderer end to end on config/data/tiny.yaml: resume after a kill, index, validator, corrupt shards.

Real MuJoCo rendering (EGL), no mocks. One reference render (~25 s) is shared by the module.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from distill.data.check import check
from distill.data.config import load_config
from distill.data.render import run
from distill.data.shards import ShardError, ShardReader, load_index

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "config" / "data" / "tiny.yaml"


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("MUJOCO_GL", "egl")
    env["PYOPENGL_PLATFORM"] = env["MUJOCO_GL"]
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture(scope="module")
def tiny_dir(tiny_libero) -> Path:
    """The session's tiny render (tests/conftest.py), shared with the training tests."""
    return Path(tiny_libero)


def _shard_arrays(path: Path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _shards(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.glob("*/*.npz"))


def test_index_rows_match_config(tiny_dir):
    cfg = load_config(TINY)
    index = load_index(tiny_dir)
    rows = index["clips"]
    assert {s: sum(r["split"] == s for r in rows) for s in ("train", "val", "test")} == cfg.clips
    assert len({r["clip_id"] for r in rows}) == len(rows)
    assert index["depth"]["unit_m"] == cfg.depth_unit_m
    assert "j + 0.5" in index["pixel_center"]
    for r in rows:
        with ShardReader(tiny_dir / r["shard"]) as reader:
            clip = reader.clip(r["slot"])
        T = cfg.frames
        assert clip["rgb"].shape == (T, cfg.height, cfg.width, 3) and clip["rgb"].dtype == np.uint8
        assert clip["depth"].shape == (T, cfg.height, cfg.width) and clip["depth"].dtype == np.float32
        assert (clip["depth"] > 0).mean() > 0.5  # a scene fills the view
        R = clip["T_wc"][:, :3, :3]
        np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-9)


def test_splits_are_scene_disjoint_on_disk(tiny_dir):
    rows = load_index(tiny_dir)["clips"]
    scenes = {s: {r["scene_id"] for r in rows if r["split"] == s} for s in ("train", "val", "test")}
    assert all(scenes.values())
    assert not (scenes["train"] & scenes["val"]) and not (scenes["train"] & scenes["test"]) and not (scenes["val"] & scenes["test"])


def test_resume_after_kill_gives_identical_shards(tiny_dir, tmp_path):
    """Kill a render (SIGKILL, whole process group) after its first shard, rerun: same shards as an uninterrupted run.

    To halve the cost, this run renders only the tiny config's train split (clip ids and seeds do
    not depend on the other splits, so its shards must equal the reference run's train shards).
    """
    cfg_path = tmp_path / "tiny_train.yaml"
    raw = yaml.safe_load(TINY.read_text())
    raw["clips"] = {"train": raw["clips"]["train"]}
    cfg_path.write_text(yaml.safe_dump(raw))
    expected = [p for p in _shards(tiny_dir) if p.parts[0] == "train"]
    assert len(expected) >= 2
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "distill.data.render", "--config", str(cfg_path), "--out", str(out), "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not list(out.glob("*/*.npz")):
            assert proc.poll() is None, "render exited before writing a shard"
            assert time.monotonic() < deadline, "no shard within 300 s"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    survivors = {p: (out / p).stat().st_mtime_ns for p in _shards(out)}
    assert survivors and len(survivors) < len(expected), "the kill came after the run had finished"
    assert not (out / "index.json").exists()

    run(load_config(cfg_path), out, workers=1, progress=False)
    assert _shards(out) == expected
    for p, mtime in survivors.items():
        assert (out / p).stat().st_mtime_ns == mtime, f"{p} was rendered again instead of skipped"
    for p in expected:
        a, b = _shard_arrays(tiny_dir / p), _shard_arrays(out / p)
        assert a.keys() == b.keys()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{p}:{k}")
    assert not list(out.glob("**/*.tmp")), "temporary files left behind"


def test_resume_refuses_another_config(tiny_dir, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(tiny_dir, out)
    other = dataclasses.replace(load_config(TINY), seed=8)
    with pytest.raises(SystemExit, match="another config"):
        run(other, out, workers=1, progress=False)


def test_validator_reprojection_under_5mm(tiny_dir, tmp_path):
    preview = tmp_path / "preview.png"
    report = check(tiny_dir, preview=preview, verbose=False)
    assert report["clips_checked"] == len(load_index(tiny_dir)["clips"])
    assert report["static"]["n"] > 1000
    assert report["static"]["median_mm"] < 5.0
    assert report["pass"]
    assert preview.stat().st_size > 1000
    saved = json.loads((tiny_dir / "check.json").read_text())
    assert saved["static"]["median_mm"] == report["static"]["median_mm"]


def test_validator_detects_a_wrong_pose(tiny_dir, tmp_path):
    """Shift one clip's poses by 1 cm in the shards: the validator's median must jump."""
    out = tmp_path / "bad"
    shutil.copytree(tiny_dir, out)
    rows = load_index(out)["clips"]
    row = next(r for r in rows if r["path_kind"] in ("orbit", "arc", "random_walk"))
    path = out / row["shard"]
    arrays = _shard_arrays(path)
    key = f"c{row['slot']:02d}_T_wc"
    arrays[key] = arrays[key].copy()
    arrays[key][1:, 2, 3] += 0.01  # every frame but the first moves 1 cm up (world z, off the table plane)
    np.savez_compressed(path, **arrays)
    good = {c["clip_id"]: c for c in check(tiny_dir, verbose=False)["per_clip"]}
    bad = {c["clip_id"]: c for c in check(out, verbose=False)["per_clip"]}
    assert good[row["clip_id"]]["median_mm"] < 1.0
    assert bad[row["clip_id"]]["median_mm"] > 3.0


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_shard_error_names_the_file(tiny_dir, tmp_path, damage):
    out = tmp_path / "corrupt"
    shutil.copytree(tiny_dir, out)
    victim = out / _shards(out)[0]
    data = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(data[: len(data) // 2])
    else:
        mid = len(data) // 2
        victim.write_bytes(data[:mid] + bytes(4096) + data[mid + 4096 :])
    with pytest.raises(ShardError, match=str(victim.name)):
        check(out, verbose=False)
    res = subprocess.run([sys.executable, "-m", "distill.data.check", str(out)], check=False, cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert res.returncode == 2 and victim.name in res.stderr


def test_dataset_samples_agree_with_the_shards(tiny_dir):
    from distill.data.augment import PhotometricAugment
    from distill.data.dataset import LiberoClipDataset
    from vega_ros.geometry import depth_to_points, transform_points

    ds = LiberoClipDataset(tiny_dir, "train", num_frames=3, min_gap=3, samples_per_clip=2)
    assert len(ds) == 2 * load_config(TINY).clips["train"]
    s = ds[1]
    row = ds.rows[0]
    with ShardReader(tiny_dir / row["shard"]) as r:
        clip = r.clip(row["slot"])
    f = s["frame_ids"].numpy()
    assert s["clip_id"] == row["clip_id"] and np.all(np.diff(f) >= 3)
    np.testing.assert_array_equal((s["images"].numpy() * 255).round().astype(np.uint8), clip["rgb"][f].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(s["depth"].numpy(), clip["depth"][f])
    for k in range(3):  # point maps = depth back-projected through T_wc, expressed in frame 0's camera
        world = transform_points(clip["T_wc"][f[k]], depth_to_points(clip["depth"][f[k]], clip["K"][f[k]]).astype(np.float64))
        ref = transform_points(np.linalg.inv(clip["T_wc"][f[0]]), world)
        valid = s["valid"][k].numpy()
        np.testing.assert_allclose(s["points_ref"][k].numpy()[valid], ref[valid], atol=1e-5)
        assert not s["points_ref"][k].numpy()[~valid].any()
    assert ds[1]["frame_ids"].tolist() == f.tolist()  # deterministic per (seed, epoch, index)
    aug = LiberoClipDataset(tiny_dir, "train", num_frames=3, min_gap=3, samples_per_clip=2, augment=PhotometricAugment())[1]
    assert not np.array_equal(aug["images"].numpy(), s["images"].numpy())
    np.testing.assert_array_equal(aug["points_ref"].numpy(), s["points_ref"].numpy())
