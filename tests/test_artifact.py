"""Artifact loading refuses anything that does not match its card: checksums, fields, ONNX signatures."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.fixtures.artifacts import export_small, export_small_v2
from vega_ros import artifact as art


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return export_small(tmp_path_factory.mktemp("art") / "small")


def _copy(small, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(small.path, dst)
    return dst


def _edit_card(d, **changes):
    card = json.loads((d / "card.json").read_text())
    for k, v in changes.items():
        node = card
        *path, last = k.split("__")
        for p in path:
            node = node[p]
        if v is None:
            del node[last]
        else:
            node[last] = v
    (d / "card.json").write_text(json.dumps(card))


def test_shipped_student_loads_and_its_card_says_how_it_was_made(monkeypatch):
    monkeypatch.delenv("VEGA_MODEL", raising=False)
    a = art.load_artifact(art.default_model_dir())
    assert a.card.name == art.DEFAULT_MODEL == "vega-frame-v2" and not a.card.random_init
    assert a.card.format_version == 2 and a.card.canonical_focal_px > 0
    assert (a.card.input.height, a.card.input.width) == (224, 224)
    assert a.card.training["wan_teacher"] is False and a.card.training["loss_terms"]
    assert a.card.depth_scale == art.DepthScale.METRIC
    for held_out in ("libero_test", "held_out_family"):  # measured by distill.eval_depth, which the card names
        scores = a.card.eval[held_out]
        assert 0 < scores["abs_rel"] and 0 <= scores["delta1"] <= 1 and scores["clips"] > 0
    assert a.card.eval["command"].startswith("python -m distill.eval_depth")
    assert a.card.eval["frame_ms_cpu2"]["value"] > 0 and "bench_student.py" in a.card.eval["frame_ms_cpu2"]["command"]
    for f in a.card.graphs:
        assert art.sha256_file(f"{a.path}/{f}") == a.card.files[f]
        assert os.path.getsize(f"{a.path}/{f}") < 30e6  # committed files stay small


def test_the_previous_student_still_loads_for_side_by_side_benchmarks(monkeypatch):
    monkeypatch.setenv("VEGA_MODEL", "vega-sim-vit-ti")
    a = art.load_artifact(art.default_model_dir())
    assert a.card.format_version == 1 and (a.card.frames_per_clip, a.card.input.height) == (4, 224)


def test_random_placeholder_still_loads_by_name_and_says_it_is_random_init(monkeypatch):
    monkeypatch.setenv("VEGA_MODEL", "vega-random-tiny")
    a = art.load_artifact(art.default_model_dir())
    assert a.card.name == "vega-random-tiny" and a.card.random_init


def test_small_artifact_signature_matches_card(small):
    enc_in, enc_out = art.read_onnx_signature(small.encoder_path)
    assert [t.name for t in enc_in] == ["image"] and enc_in[0].shape[1:] == (3, 56, 84)
    assert not isinstance(enc_in[0].shape[0], int)  # dynamic batch
    assert enc_out[0].shape[1:] == (small.card.tokens_n, small.card.tokens_c)


def test_changed_onnx_file_is_refused(small, tmp_path):
    d = _copy(small, tmp_path)
    with open(d / "heads.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(art.ArtifactError, match="sha256"):
        art.load_artifact(d)


def test_card_disagreeing_with_graph_is_refused(small, tmp_path):
    d = _copy(small, tmp_path)
    _edit_card(d, tokens__c=small.card.tokens_c + 1)
    with pytest.raises(art.ArtifactError, match=r"encoder.onnx: output 'tokens' axis 2 is 32 in the graph but 33 by the card"):
        art.load_artifact(d)
    d2 = tmp_path / "c2"
    shutil.copytree(small.path, d2)
    _edit_card(d2, frames_per_clip=3)
    with pytest.raises(art.ArtifactError, match="heads.onnx: input 'tokens' axis 1"):
        art.load_artifact(d2)


@pytest.mark.parametrize("change, message", [
    ({"format_version": 99}, "format_version 99"),
    ({"depth_scale": "furlongs"}, "depth_scale"),
    ({"pose_encoding": "euler"}, "pose_encoding"),
    ({"input__height": None}, "missing field 'height'"),
    ({"files__heads.onnx": None}, "heads.onnx"),
    ({"input__channels": "BGR"}, "RGB"),
])
def test_malformed_card_fields_are_named(small, tmp_path, change, message):
    d = _copy(small, tmp_path)
    key = next(iter(change))
    if key == "files__heads.onnx":
        card = json.loads((d / "card.json").read_text())
        del card["files"]["heads.onnx"]
        (d / "card.json").write_text(json.dumps(card))
    else:
        _edit_card(d, **change)
    with pytest.raises(art.ArtifactError, match=message):
        art.load_artifact(d)


def test_missing_directory_and_card(tmp_path):
    with pytest.raises(art.ArtifactError, match="does not exist"):
        art.load_artifact(tmp_path / "nope")
    with pytest.raises(art.ArtifactError, match="no card.json"):
        art.load_artifact(tmp_path)


# ----------------------------------------------------------------------------- format version 2

@pytest.fixture(scope="module")
def small_v2(tmp_path_factory):
    return export_small_v2(tmp_path_factory.mktemp("art2") / "small_v2")


def test_v2_artifact_loads_with_and_without_heads(small_v2, tmp_path):
    c = small_v2.card
    assert c.format_version == 2 and c.has_heads and c.graphs == (art.FRAME_FILE, art.HEADS_FILE)
    assert c.canonical_focal_px == 60.0 and (c.input.height, c.input.width) == (56, 84)
    assert small_v2.frame_path.endswith("frame.onnx")
    bare = export_small_v2(tmp_path / "bare", with_heads=False).card
    assert not bare.has_heads and bare.graphs == (art.FRAME_FILE,)
    assert bare.frames_per_clip is None and bare.features_dim is None and bare.pose_encoding is None
    card = json.loads((tmp_path / "bare" / "card.json").read_text())
    assert "frames_per_clip" not in card and card["canonical_focal_px"] == 60.0


def test_v2_changed_frame_graph_is_refused(small_v2, tmp_path):
    d = _copy(small_v2, tmp_path)
    with open(d / "frame.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(art.ArtifactError, match="frame.onnx: sha256"):
        art.load_artifact(d)


def test_v2_card_disagreeing_with_frame_graph_is_refused(small_v2, tmp_path):
    d = _copy(small_v2, tmp_path)
    _edit_card(d, input__width=56)
    with pytest.raises(art.ArtifactError, match="frame.onnx: input 'image' axis 3 is 84 in the graph but 56"):
        art.load_artifact(d)


@pytest.mark.parametrize("change, message", [
    ({"canonical_focal_px": None}, "missing field 'canonical_focal_px'"),
    ({"canonical_focal_px": -5.0}, "canonical_focal_px must be a positive"),
    ({"canonical_focal_px": "200"}, "canonical_focal_px"),
    ({"files__frame.onnx": None}, "sha256 .* of 'frame.onnx'"),
    ({"files__encoder.onnx": "0" * 64}, r"\['encoder.onnx'\] are not graphs of format_version 2"),
    ({"frames_per_clip": None}, "missing field 'frames_per_clip'"),
    ({"format_version": 3}, r"format_version 3 is not supported \(this loader reads \[1, 2\]\)"),
])
def test_v2_malformed_card_fields_are_named(small_v2, tmp_path, change, message):
    d = _copy(small_v2, tmp_path)
    _edit_card(d, **change)
    with pytest.raises(art.ArtifactError, match=message):
        art.load_artifact(d)


def test_v1_card_listing_a_v2_graph_is_refused(small, tmp_path):
    d = _copy(small, tmp_path)
    card = json.loads((d / "card.json").read_text())
    card["files"]["frame.onnx"] = "0" * 64
    (d / "card.json").write_text(json.dumps(card))
    with pytest.raises(art.ArtifactError, match=r"\['frame.onnx'\] are not graphs of format_version 1"):
        art.load_artifact(d)
