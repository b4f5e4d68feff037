"""The probe on the per-frame student of format version 2: ``student:`` over a v2 artifact reads
frame.onnx's tokens, ``random-frame-*`` is the random-init control of that architecture, and the
paired comparison's interval verdicts (issue 33: "ahead ... with intervals that exclude zero")."""

import json
import math

import numpy as np
import pytest
import torch

from distill.encoders import FrameModuleEncoder, FrameOnnxEncoder, onnx_file_of_spec, parse_encoder_spec
from distill.metrics import paired_comparison
from distill.nets.models.frame_student import build_frame_student, frame_card_fields
from distill.probe import main
from distill.probe.report import PAIRED_KEYS, interval_verdict, paired_table
from vega_ros import contract

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def v2_artifact(tmp_path_factory):
    """A tiny random format-version-2 artifact (FrameStudent 'tiny', 32x48, no heads)."""
    pytest.importorskip("onnxruntime")
    from distill.export import export_artifact_v2

    m = build_frame_student("tiny", seed=3).eval()
    out = tmp_path_factory.mktemp("v2") / "frame-v2"
    export_artifact_v2(m, str(out), name="tiny-frame", card_fields=frame_card_fields(m))
    return out


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
def test_v2_spec_tokens_are_frame_onnx_tokens(v2_artifact):
    import onnxruntime as ort

    from vega_ros.artifact import read_card

    card = read_card(str(v2_artifact))
    enc = parse_encoder_spec(f"student:{v2_artifact}")
    assert isinstance(enc, FrameOnnxEncoder) and enc.per_frame
    assert onnx_file_of_spec(f"student:{v2_artifact}") == v2_artifact / contract.FRAME_FILE
    assert enc.dim == card.tokens_c == 32 and enc.grid_size(32, 48) == (2, 3)
    info = enc.describe()
    assert info["sha256"] == card.files[contract.FRAME_FILE] and info["graph"] == contract.FRAME_FILE
    images = torch.rand(4, 3, 32, 48, generator=torch.Generator().manual_seed(0))
    tokens = enc.encode_clip(images)
    assert tokens.shape == (4, card.tokens_n, card.tokens_c) and tokens.dtype == torch.float32
    # the graph itself, at other focal lengths: the tokens are frame.onnx's and do not depend on the focal
    sess = ort.InferenceSession(str(v2_artifact / contract.FRAME_FILE), providers=["CPUExecutionProvider"])
    for focal in (card.canonical_focal_px, 11.0, 90.0):
        (want,) = sess.run([contract.TOKENS], {contract.FRAME_IMAGE: images.numpy(),
                                               contract.FRAME_FOCAL: np.full(4, focal, np.float32)})
        np.testing.assert_allclose(tokens.numpy(), want, rtol=1e-5, atol=1e-5)
    # the file itself as the SPEC reads the same graph
    direct = parse_encoder_spec(f"student:{v2_artifact / contract.FRAME_FILE}")
    assert isinstance(direct, FrameOnnxEncoder) and torch.equal(direct.encode_clip(images), tokens)
    with pytest.raises(ValueError, match="takes 32x48 images"):
        enc.encode_clip(torch.rand(1, 3, 32, 32))


def test_random_frame_control_is_the_seed0_frame_student():
    enc = parse_encoder_spec("random-frame-tiny")
    assert isinstance(enc, FrameModuleEncoder) and enc.dim == 32 and enc.per_frame
    images = torch.rand(3, 3, 32, 48, generator=torch.Generator().manual_seed(1))
    tokens = enc.encode_clip(images)
    assert tokens.shape == (3, 6, 32) and enc.grid_size(32, 48) == (2, 3)
    m = build_frame_student("tiny", seed=0).eval()
    with torch.no_grad():
        want = m.maps(images, torch.full((3,), m.canonical_focal_px))["tokens"]
    torch.testing.assert_close(tokens, want)
    assert torch.equal(tokens, parse_encoder_spec("random-frame-tiny").encode_clip(images))  # fixed weights
    with pytest.raises(ValueError, match="unknown frame student preset"):
        parse_encoder_spec("random-frame-huge")


def test_interval_verdict_known_answers():
    base = np.linspace(0.1, 1.0, 50)
    lower_better = paired_comparison(base - 0.05, base, lower_is_better=True)  # every clip 0.05 lower
    assert lower_better["ci_low"] == pytest.approx(-0.05) and lower_better["ci_high"] == pytest.approx(-0.05)
    assert interval_verdict(lower_better, lower_is_better=True) == "ahead"
    assert interval_verdict(lower_better, lower_is_better=False) == "behind"  # lower is worse for δ1
    higher = paired_comparison(base + 0.05, base, lower_is_better=False)
    assert interval_verdict(higher, lower_is_better=False) == "ahead"
    assert interval_verdict(higher, lower_is_better=True) == "behind"
    # half the clips +0.1, half −0.1: mean 0, the interval holds zero
    noise = paired_comparison(base + np.tile([0.1, -0.1], 25), base)
    assert noise["ci_low"] < 0 < noise["ci_high"] and interval_verdict(noise, True) == "n.s."
    assert interval_verdict({"ci_low": math.nan, "ci_high": math.nan}, True) == "n.s."
    assert interval_verdict({"ci_low": 0.0, "ci_high": 0.2}, True) == "n.s."  # touching zero does not exclude it


def _fake_result(name: str, per_clip: dict) -> dict:
    config = {"test_split": "test", "num_frames": 4, "min_gap": 5, "seed": 0, "test_samples_per_clip": 1,
              "max_test_clips": None}
    return {"encoder": name, "data": "synthetic:40", "config": config,
            "test": {"clips": len(per_clip["depth_abs_rel"]), "per_clip": per_clip}}


def test_paired_table_states_the_verdict_per_measure():
    rng = np.random.default_rng(0)
    n = 40
    base = {"point_err_x10": rng.uniform(1, 2, n), "depth_abs_rel": rng.uniform(0.1, 0.3, n),
            "depth_delta1": rng.uniform(0.5, 0.8, n), "pose_err_deg_median": rng.uniform(5, 20, n)}
    # ahead on points and depth (both), no different on pose: every clip shifted, pose jittered symmetrically
    run = {"point_err_x10": base["point_err_x10"] - 0.2, "depth_abs_rel": base["depth_abs_rel"] - 0.02,
           "depth_delta1": base["depth_delta1"] + 0.05,
           "pose_err_deg_median": base["pose_err_deg_median"] + np.tile([1.0, -1.0], n // 2)}
    baseline = _fake_result("pixels", {k: v.tolist() for k, v in base.items()})
    student = _fake_result("student", {k: v.tolist() for k, v in run.items()})
    table = paired_table([student, baseline], baseline)
    row = next(line for line in table.splitlines() if line.startswith("| student |"))
    cells = [c.strip() for c in row.strip("|").split("|")][1:]
    assert len(cells) == len(PAIRED_KEYS)
    assert cells[0] == f"-0.200 [-0.200, -0.200], better on 100 % of {n}: ahead"
    assert cells[1] == f"-0.020 [-0.020, -0.020], better on 100 % of {n}: ahead"
    assert cells[2] == f"+0.050 [+0.050, +0.050], better on 100 % of {n}: ahead"
    assert cells[3].startswith("+0.000 [") and cells[3].endswith(": n.s.")


@pytest.mark.filterwarnings("ignore::UserWarning", "ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
def test_probe_end_to_end_on_a_v2_artifact_and_its_card(v2_artifact, tmp_path, capsys):
    import shutil

    from vega_ros.artifact import load_artifact

    model = tmp_path / "model"
    shutil.copytree(v2_artifact, model)
    own, floor = tmp_path / "own", tmp_path / "floor"
    common = ["--data", "synthetic:2:32x48", "--steps", "2", "--config", "config/probe/tiny.yaml"]
    assert main(["--encoder", f"student:{model}", "--out", str(own), *common]) == 0
    assert main(["--encoder", "random-frame-tiny", "--out", str(floor), *common]) == 0
    res = json.loads((own / "results.json").read_text())
    card = load_artifact(str(model)).card
    assert res["encoder_info"]["sha256"] == card.files[contract.FRAME_FILE]
    assert res["test"]["clips"] == 2 and np.isfinite(res["test"]["depth_abs_rel"])
    capsys.readouterr()
    assert main(["--table", str(own), str(floor), "--versus", str(floor)]) == 0
    assert f"| student:{model} | " in capsys.readouterr().out
    # the card's own frame.onnx must be the first row; then the table lands in the card
    with pytest.raises(ValueError, match="frame.onnx"):
        main(["--table", str(floor), str(own), "--record-in-card", str(model)])
    assert main(["--table", str(own), str(floor), "--record-in-card", str(model)]) == 0
    rows = load_artifact(str(model)).card.metrics["probe"]["rows"]
    assert [r["encoder"] for r in rows] == [f"student:{model}", "random-frame-tiny"]
    # a re-exported frame.onnx under the same --out is refused
    with open(model / contract.FRAME_FILE, "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="re-exported"):
        main(["--encoder", f"student:{model}", "--out", str(own), "--cache-only", *common])
