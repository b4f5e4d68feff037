"""distill.data.sources: one data spec for every clip source (the CO3Dv2 and DL3DV sources are
tested on their fixtures in test_data_co3d.py / test_data_dl3dv.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.data.sample import SAMPLE_KEYS
from distill.data.sources import DataSpec, SourceKind, open_clips, parse_data_spec, scene_split


def test_specs_parse_into_kind_path_and_size():
    assert parse_data_spec("data/libero_sim") == DataSpec(SourceKind.LIBERO_SIM, path=Path("data/libero_sim"))
    assert parse_data_spec("libero_sim:data/x") == DataSpec(SourceKind.LIBERO_SIM, path=Path("data/x"))
    assert parse_data_spec("co3d:/d/co3d") == DataSpec(SourceKind.CO3D, path=Path("/d/co3d"), size_hw=(224, 224))
    assert parse_data_spec("dl3dv:/d/dl:96x128") == DataSpec(SourceKind.DL3DV, path=Path("/d/dl"), size_hw=(96, 128))
    assert parse_data_spec("synthetic:3") == DataSpec(SourceKind.SYNTHETIC, count=3, size_hw=(64, 64))
    assert parse_data_spec("synthetic:3:32x48") == DataSpec(SourceKind.SYNTHETIC, count=3, size_hw=(32, 48))


@pytest.mark.parametrize("spec, message", [
    ("", "empty"),
    ("kinect:/d", "unknown source 'kinect'"),
    ("synthetic:x", "clip count"),
    ("synthetic:0", "clip count"),
    ("co3d:", "needs a directory"),
    ("libero_sim:/d:32x32", "own frame size"),
])
def test_bad_specs_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_data_spec(spec)


def test_synthetic_splits_are_disjoint_and_missing_dirs_are_named(tmp_path):
    train, test = open_clips("synthetic:3:32x48", "train"), open_clips("synthetic:3:32x48", "test")
    assert len(train) == 3 and train[0]["images"].shape == (4, 3, 32, 48) and set(SAMPLE_KEYS) <= set(train[0])
    assert train[0]["clip_id"] != test[0]["clip_id"]  # disjoint scenes per split
    for spec in (str(tmp_path / "nope"), f"co3d:{tmp_path / 'nope'}", f"dl3dv:{tmp_path / 'nope'}"):
        with pytest.raises(FileNotFoundError, match="nope"):
            open_clips(spec, "train")
    with pytest.raises(ValueError, match="splits"):
        open_clips("synthetic:2", "val")


def test_scene_split_is_a_stable_share_of_names():
    names = [f"scene-{i}" for i in range(2000)]
    share = sum(scene_split(n) == "test" for n in names) / len(names)
    assert 0.17 < share < 0.23
    assert [scene_split(n) for n in names[:50]] == [scene_split(n) for n in names[:50]]
    assert scene_split("x", test_percent=0) == "train" and scene_split("x", test_percent=100) == "test"
