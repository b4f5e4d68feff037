"""The probe benchmark: encoder SPECs, feature cache, resumable training, a real overfitting test,
the classical baseline's geometry, and the CLI end to end on tiny synthetic clips."""

import json
import os
import shutil

import numpy as np
import pytest
import torch

from distill.config import ConfigError
from distill.encoders import HFEncoder, ModuleEncoder, parse_encoder_spec
from distill.nets.models import build_student, save_student
from distill.probe import (
    TRAIN_KEYS,
    ProbeRunConfig,
    batch_from_cache,
    build_probe,
    cache_features,
    essential_relative_pose,
    evaluate,
    load_cached_split,
    main,
    make_synthetic_clip,
    train_probe,
)
from distill.probe.objective import trainer_config
from distill.training import checkpoint as ckpt_mod
from distill.training.trainer import warmup_cosine
from vega_ros import geometry as geo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_synthetic_clip_is_exact_geometry():
    clip = make_synthetic_clip(5, num_frames=3, height=24, width=32)
    assert clip["images"].shape == (3, 3, 24, 32) and clip["images"].dtype == np.float32
    assert 0.0 <= clip["images"].min() and clip["images"].max() <= 1.0
    assert clip["valid"].mean() > 0.5
    # frame 2's points, back in world coordinates through frame 0's pose, match its own back-projection
    world_from_ref = geo.transform_points(clip["T_wc"][0].astype(np.float64), clip["points_ref"][2].astype(np.float64))
    direct = geo.depth_to_world_points(clip["depth"][2], clip["K"][2], clip["T_wc"][2].astype(np.float64))
    v = clip["valid"][2]
    assert np.abs(world_from_ref[v] - direct[v]).max() < 1e-4


def test_probe_schedule_warms_up_then_decays_to_zero(tmp_path):
    # the probe trains through the shared loop; its settings map onto TrainerConfig, cosine down to 0
    run = ProbeRunConfig(steps=100, warmup_steps=10, lr=3e-4, batch_size=2, ckpt_every=7, grad_clip=0.5, seed=4)
    t = trainer_config(run, tmp_path)
    assert (t.max_steps, t.warmup_steps, t.lr, t.batch_size, t.checkpoint_every, t.grad_clip, t.seed) == (
        100, 10, 3e-4, 2, 7, 0.5, 4)
    factor = [warmup_cosine(s, t.warmup_steps, t.max_steps, t.min_lr_ratio) for s in (0, 9, 10, 55, 100)]
    assert factor == pytest.approx([0.1, 1.0, 1.0, 0.5, 0.0], abs=1e-12)


def test_essential_pose_recovers_the_true_relative_pose():
    rng = np.random.default_rng(0)
    h, w = 96, 128
    K = geo.intrinsics_from_fov(w, h, 60.0)
    pts_w = rng.uniform([-1, -1, -0.5], [1, 1, 0.5], (200, 3))
    T_wa = geo.look_at(np.array([3.0, 0.0, 0.8]), np.zeros(3))
    T_wb = geo.look_at(np.array([2.6, 1.2, 1.0]), np.zeros(3))
    uv_a, _ = geo.project_points(geo.transform_points(geo.se3_inverse(T_wa), pts_w), K)
    uv_b, _ = geo.project_points(geo.transform_points(geo.se3_inverse(T_wb), pts_w), K)
    T_ab = essential_relative_pose(uv_a, uv_b, K, K)
    T_gt = geo.relative_pose(T_wa, T_wb)
    assert geo.rotation_angle_deg(T_ab[:3, :3], T_gt[:3, :3]) < 0.1
    assert geo.translation_angle_deg(T_ab[:3, 3], T_gt[:3, 3], ambiguity=False) < 0.1


def test_encoder_specs_random_and_student(tmp_path):
    enc = parse_encoder_spec("random-vit-ti")
    assert isinstance(enc, ModuleEncoder) and enc.dim == 192 and enc.per_frame
    images = torch.rand(2, 3, 32, 48)
    tokens = enc.encode_clip(images)
    assert tokens.shape == (2, 6, 192) and enc.grid_size(32, 48) == (2, 3)
    assert torch.equal(tokens, parse_encoder_spec("random-vit-ti").encode_clip(images))  # the floor is fixed
    st = build_student("vit-ti", seed=1, depth=1, embed_dim=32, num_heads=2)
    save_student(st, tmp_path / "student")
    loaded = parse_encoder_spec(f"student:{tmp_path / 'student'}")
    assert torch.allclose(loaded.encode_clip(images), st(images))
    for bad in ("nonsense", "foo:/x", "student:"):
        with pytest.raises(ValueError):
            parse_encoder_spec(bad)
    with pytest.raises(FileNotFoundError):
        parse_encoder_spec(f"student:{tmp_path / 'missing'}")


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
def test_encoder_spec_student_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    st = build_student("vit-ti", seed=1, depth=1, embed_dim=32, num_heads=2, image_size=(32, 32)).eval()
    (tmp_path / "m").mkdir()
    torch.onnx.export(st, (torch.rand(1, 3, 32, 32),), str(tmp_path / "m" / "encoder.onnx"), opset_version=17,
                      dynamo=False, input_names=["images"], output_names=["tokens"])
    enc = parse_encoder_spec(f"student:{tmp_path / 'm'}")
    images = torch.rand(2, 3, 32, 32)
    assert torch.allclose(enc.encode_clip(images), st(images), atol=1e-4)


def test_encoder_spec_hf_local_tiny_dinov2(tmp_path):
    from transformers import Dinov2Config, Dinov2Model

    torch.manual_seed(0)
    cfg = Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       patch_size=16, image_size=64)
    model = Dinov2Model(cfg).eval()
    model.save_pretrained(tmp_path / "dino")
    (tmp_path / "dino" / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]}))
    enc = parse_encoder_spec(f"hf:{tmp_path / 'dino'}")
    assert isinstance(enc, HFEncoder) and enc.per_frame and enc.dim == 32
    images = torch.rand(3, 3, 64, 48)
    tokens = enc.encode_clip(images)
    assert tokens.shape == (3, 12, 32)
    with torch.no_grad():
        ref = model(pixel_values=(images - 0.5) / 0.25).last_hidden_state[:, 1:]
    assert torch.allclose(tokens, ref, atol=1e-5)
    with pytest.raises(FileNotFoundError):
        parse_encoder_spec(f"hf:{tmp_path / 'nope'}")


def test_wan_spec_reaches_the_teacher_module(tmp_path):
    # an empty directory is not a WAN checkpoint: the teacher (distill.teacher.wan) must refuse it
    with pytest.raises((NotImplementedError, FileNotFoundError, OSError, ValueError)):
        parse_encoder_spec(f"wan:{tmp_path}")


def _one_clip_cache(tmp_path, size=64, seed=0):
    clips = [make_synthetic_clip(seed, 4, size, size)]
    enc = parse_encoder_spec("random-vit-ti")
    manifest = cache_features(enc, clips, tmp_path / "cache", "random-vit-ti", desc="test")
    return manifest, load_cached_split(tmp_path / "cache")


def test_feature_cache_roundtrip_and_refuses_other_encoder(tmp_path):
    manifest, cache = _one_clip_cache(tmp_path, size=32)
    assert manifest["complete"] and manifest["count"] == 1 and manifest["grid"] == [2, 2] and manifest["dim"] == 192
    assert cache["tokens"].shape == (1, 4, 4, 192) and cache["tokens"].dtype == torch.float16
    clip = make_synthetic_clip(0, 4, 32, 32)
    assert np.allclose(cache["depth"][0].numpy(), clip["depth"])
    assert torch.equal(cache["valid"][0].bool(), torch.from_numpy(clip["valid"]))
    with pytest.raises(ValueError, match="caches"):
        cache_features(parse_encoder_spec("random-cnn"), [clip], tmp_path / "cache", "random-cnn")


def test_training_cache_rebuilds_points_from_depth(tmp_path):
    # training loads only TRAIN_KEYS (no images, no point maps); a batch must carry the same
    # reference-frame point maps the cache stores, back-projected from depth, K and T_wc
    _, full = _one_clip_cache(tmp_path, size=32)
    lite = load_cached_split(tmp_path / "cache", keys=TRAIN_KEYS)
    assert set(lite) == set(TRAIN_KEYS) and "points_ref" not in lite and "images" not in lite
    idx = torch.tensor([0, 0])
    rebuilt = batch_from_cache(lite, idx)["points_ref"]
    assert rebuilt.shape == (2, 4, 32, 32, 3)
    assert torch.allclose(rebuilt, batch_from_cache(full, idx)["points_ref"], atol=1e-5)
    assert torch.count_nonzero(rebuilt[0, 1:]) > 0  # frames 1.. moved into frame 0's camera frame


def test_training_resumes_exactly(tmp_path, monkeypatch):
    manifest, cache = _one_clip_cache(tmp_path, size=32)
    cache["tokens"] = torch.cat([cache["tokens"], cache["tokens"].flip(1)])  # two samples: batch order matters
    for k in ("depth", "valid", "K", "T_wc", "points_ref", "images"):
        cache[k] = torch.cat([cache[k], cache[k].flip(1)])
    run = ProbeRunConfig(preset="tiny", steps=6, batch_size=1, lr=1e-3, warmup_steps=2, ckpt_every=3)
    torch.manual_seed(0)
    straight = build_probe(run, manifest)
    init = {k: v.clone() for k, v in straight.state_dict().items()}
    h1 = train_probe(straight, cache, run, tmp_path / "straight", log_every=1, progress=False)
    assert [h["step"] for h in h1] == [1, 2, 3, 4, 5, 6]

    # the same run, killed right after the checkpoint at step 3, then restarted from that checkpoint
    class Killed(Exception):
        pass

    orig = ckpt_mod.save_checkpoint

    def save_then_die(run_dir, step, *args, **kwargs):
        path = orig(run_dir, step, *args, **kwargs)
        if step == 3:
            raise Killed
        return path

    first = build_probe(ProbeRunConfig(preset="tiny"), manifest)
    first.load_state_dict(init)
    monkeypatch.setattr(ckpt_mod, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        train_probe(first, cache, run, tmp_path / "killed", log_every=1, progress=False)
    monkeypatch.setattr(ckpt_mod, "save_checkpoint", orig)
    resumed = build_probe(ProbeRunConfig(preset="tiny", seed=5), manifest)  # other initial weights: the checkpoint wins
    h2 = train_probe(resumed, cache, run, tmp_path / "killed", log_every=1, progress=False)
    assert [h["step"] for h in h2] == [1, 2, 3, 4, 5, 6]
    assert [h["total"] for h in h2] == pytest.approx([h["total"] for h in h1], rel=1e-5)
    for k, v in straight.state_dict().items():
        assert torch.allclose(v, resumed.state_dict()[k], atol=1e-6), k


def test_probe_initial_weights_follow_the_run_seed(tmp_path):
    manifest, _ = _one_clip_cache(tmp_path, size=32)
    torch.manual_seed(1)
    a = build_probe(ProbeRunConfig(preset="tiny", seed=3), manifest).state_dict()
    state = torch.get_rng_state()
    torch.rand(7)  # another global generator state: the same weights
    b = build_probe(ProbeRunConfig(preset="tiny", seed=3), manifest).state_dict()
    c = build_probe(ProbeRunConfig(preset="tiny", seed=4), manifest).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    torch.manual_seed(1)
    build_probe(ProbeRunConfig(preset="tiny", seed=3), manifest)
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is left as it was


def test_probe_overfits_one_clip(tmp_path):
    """A real learning test: 300 CPU steps on one clip drive the probe's errors close to zero."""
    manifest, cache = _one_clip_cache(tmp_path, size=64)
    run = ProbeRunConfig(preset="tiny", steps=300, batch_size=1, lr=1e-3, warmup_steps=10, weight_decay=0.0)
    torch.manual_seed(0)
    probe = build_probe(run, manifest)
    before, _ = evaluate(probe, cache)
    history = train_probe(probe, cache, run, tmp_path / "train", log_every=50, progress=False)
    after, _ = evaluate(probe, cache)
    assert history[-1]["total"] < history[0]["total"]
    assert after["point_err_x10"] < 1.0 and after["point_err_x10"] < before["point_err_x10"] / 3
    assert after["depth_abs_rel"] < 0.06 and after["depth_delta1"] > 0.95
    assert after["auc@30"] > 0.7 > before["auc@30"]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_cli_end_to_end_and_table(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--encoder", "random-vit-ti", "--data", "synthetic:2:32x32", "--out", str(out), "--steps", "4",
            "--config", "config/probe/tiny.yaml"]
    assert main(args) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["encoder"] == "random-vit-ti" and res["train"]["steps"] == 4 and res["test"]["clips"] == 2
    for key in ("point_err_x10", "depth_abs_rel", "auc@30"):
        assert np.isfinite(res["test"][key])
    assert 0.0 <= res["orb"]["auc@30"] <= 1.0
    assert (out / "train" / "checkpoints" / "latest").is_file()
    assert res["command"].startswith("python -m distill.probe --encoder random-vit-ti")
    logged = (out / "train" / "metrics.jsonl").read_text()
    assert res["train"]["final"]["step"] == 4 and logged.count("\n") == 1  # log_every 10: the last step only
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        pass
    else:
        assert (out / "predictions.png").stat().st_size > 1000
    assert "ORB + essential" in (out / "results.md").read_text()
    # a rerun finds the cache and the finished checkpoint: no new training steps
    assert main(args) == 0
    assert (out / "train" / "metrics.jsonl").read_text() == logged
    rescored = json.loads((out / "results.json").read_text())["test"]
    per_clip = rescored.pop("per_clip")
    assert rescored == pytest.approx({k: v for k, v in res["test"].items() if k != "per_clip"}, nan_ok=True)
    assert set(per_clip) == {"point_err_x10", "depth_abs_rel", "depth_delta1", "pose_err_deg_median"}
    assert all(len(v) == res["test"]["clips"] for v in per_clip.values())
    assert np.mean(per_clip["depth_abs_rel"]) == pytest.approx(res["test"]["depth_abs_rel"])
    capsys.readouterr()
    assert main(["--table", str(out), str(out)]) == 0
    assert capsys.readouterr().out.count("| random-vit-ti |") == 2
    # a paired comparison: a copy whose every clip is 0.01 better in AbsRel, against the original
    better = json.loads((out / "results.json").read_text())
    better["encoder"] = "better"
    better["test"]["per_clip"]["depth_abs_rel"] = [v - 0.01 for v in per_clip["depth_abs_rel"]]
    (tmp_path / "better").mkdir()
    (tmp_path / "better" / "results.json").write_text(json.dumps(better))
    assert main(["--table", str(out), str(tmp_path / "better"), "--versus", str(out)]) == 0
    table = capsys.readouterr().out
    assert f"| better | +0.000 [+0.000, +0.000], better on 0 % of {res['test']['clips']}" in table
    assert f"-0.010 [-0.010, -0.010], better on 100 % of {res['test']['clips']}" in table
    better["config"]["min_gap"] += 1  # scored on other frames: no pairing
    (tmp_path / "better" / "results.json").write_text(json.dumps(better))
    with pytest.raises(ValueError, match="different test clips"):
        main(["--table", str(tmp_path / "better"), "--versus", str(out)])


def test_pixel_encoder_tokens_are_patches():
    enc = parse_encoder_spec("pixels")
    images = torch.rand(2, 3, 32, 48)
    tokens = enc.encode_clip(images)
    assert tokens.shape == (2, 6, 768) and enc.dim == 768
    # token 4 = patch (row 1, col 1); channel-major like Conv2d weights
    assert torch.equal(tokens[1, 4], images[1, :, 16:32, 16:32].reshape(-1))


def test_cli_set_overrides_and_rejects_unknown_keys(tmp_path):
    with pytest.raises(ConfigError, match="no_such_key: unknown field"):
        ProbeRunConfig.from_yaml("config/probe/tiny.yaml", no_such_key=1)
    with pytest.raises(ConfigError, match=r"--set: steps: expected int, got str .many."):
        ProbeRunConfig.from_yaml("config/probe/cpu.yaml", ["steps=many"])
    run = ProbeRunConfig.from_yaml("config/probe/cpu.yaml", ["seed=3"], min_gap=2)
    assert run.min_gap == 2 and run.seed == 3 and run.preset == "cpu" and run.lr == pytest.approx(1e-4)
    assert run.loss_config().weight_points == 1.0


def test_cache_refuses_clips_from_another_source(tmp_path):
    clips = [make_synthetic_clip(0, 2, 32, 32)]
    enc = parse_encoder_spec("pixels")
    cache_features(enc, clips, tmp_path / "c", "pixels", source={"data": "a"})
    assert cache_features(enc, clips, tmp_path / "c", "pixels", source={"data": "a"})["source"] == {"data": "a"}
    with pytest.raises(ValueError, match="caches clips from"):
        cache_features(enc, clips, tmp_path / "c", "pixels", source={"data": "b"})


def test_record_in_card_needs_the_cards_own_encoder(tmp_path, capsys):
    """The probe table lands in a student's card only if the first run measured that card's encoder.onnx."""
    from vega_ros.artifact import load_artifact

    model = tmp_path / "model"
    shutil.copytree(os.path.join(ROOT, "models", "vega-random-tiny"), model)
    own, floor = tmp_path / "own", tmp_path / "floor"
    common = ["--data", "synthetic:2:224x224", "--steps", "2", "--config", "config/probe/tiny.yaml"]
    assert main(["--encoder", f"student:{model}", "--out", str(own), *common]) == 0
    assert main(["--encoder", "random-vit-ti", "--out", str(floor), *common]) == 0
    with pytest.raises(ValueError, match="sha256"):
        main(["--table", str(floor), str(own), "--record-in-card", str(model)])
    assert main(["--table", str(own), str(floor), "--record-in-card", str(model)]) == 0
    capsys.readouterr()
    probe = load_artifact(str(model)).card.metrics["probe"]  # checksums and graphs still verify
    assert [r["encoder"] for r in probe["rows"]] == [f"student:{model}", "random-vit-ti"]
    own_res = json.loads((own / "results.json").read_text())
    assert probe["rows"][0]["depth_abs_rel"] == pytest.approx(own_res["test"]["depth_abs_rel"])
    assert probe["split"] == "test" and probe["config"]["steps"] == 2
    # the artifact's own heads, scored on the test features the probe run cached for its encoder
    assert main(["--own-heads", str(model), "--out", str(own), "--config", "config/probe/tiny.yaml"]) == 0
    heads = json.loads((own / "own_heads" / "results.json").read_text())
    assert heads["encoder"].endswith("(own heads)") and heads["test"]["clips"] == own_res["test"]["clips"]
    assert np.isfinite(heads["test"]["depth_abs_rel"]) and heads["test"] != own_res["test"]
    with pytest.raises(ValueError, match="not"):  # features of another encoder
        main(["--own-heads", str(model), "--out", str(floor), "--config", "config/probe/tiny.yaml"])
    # --cache-only encodes the splits and trains nothing; that is enough for --own-heads
    only = tmp_path / "cache-only"
    assert main(["--encoder", f"student:{model}", "--out", str(only), "--cache-only", *common]) == 0
    assert {p.name for p in only.iterdir()} == {"cache"}
    assert main(["--own-heads", str(model), "--out", str(only), "--config", "config/probe/tiny.yaml"]) == 0
    again = json.loads((only / "own_heads" / "results.json").read_text())
    assert again["test"]["depth_abs_rel"] == pytest.approx(heads["test"]["depth_abs_rel"])
    # the same SPEC over a changed file (a re-export) must not reuse the old file's features
    with open(model / "encoder.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ValueError, match="re-exported"):
        main(["--encoder", f"student:{model}", "--out", str(only), "--cache-only", *common])
