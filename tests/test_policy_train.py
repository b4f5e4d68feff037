"""distill.policy.train: demos -> token cache -> behaviour cloning -> ONNX policy -> vega_ros runtime."""

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from distill.config import ConfigError, to_dict
from distill.nets.policy import GatedFusionPolicy
from distill.policy.hdf5_io import Episode, FileMeta, write_demo_file
from distill.policy.train import ROBOT_STATE_FILE, BCConfig, ChunkDataset, bc_objective, export_policy, main, prepare_cache
from distill.training.trainer import Trainer, TrainerConfig
from vega_ros.policy_io import PolicyInputs
from vega_ros.policy_runtime import OnnxPolicy, PolicyArtifactError, resize_rgb
from vega_ros.proprio import PROPRIO_LAYOUT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENCODER = os.path.join(ROOT, "models", "vega-random-tiny")
INSTRUCTIONS = ("put the bowl on the plate", "open the drawer")


def _episode(rng, language, T=12, size=32):
    t = np.linspace(0, 1, T, dtype=np.float32)[:, None]
    return Episode(
        agentview=rng.integers(0, 256, (T, size, size, 3), dtype=np.uint8),
        wrist=rng.integers(0, 256, (T, size, size, 3), dtype=np.uint8),
        proprio={"ee_pos": np.hstack([t, t, t]), "ee_ori": np.zeros((T, 3), np.float32),
                 "gripper_states": np.full((T, 2), 0.04, np.float32), "joint_states": np.zeros((T, 7), np.float32)},
        actions=np.hstack([np.sin(6 * t), np.cos(6 * t), t, np.zeros((T, 3)), np.where(t > 0.5, 1.0, -1.0)]).astype(np.float32),
        language=language,
    )


@pytest.fixture(scope="module")
def bc_setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bc")
    rng = np.random.default_rng(0)
    for k, lang in enumerate(INSTRUCTIONS):
        meta = FileMeta(problem_name=f"task{k}", language_instruction=lang, bddl_file_name=f"task{k}.bddl", env_kwargs={})
        write_demo_file(tmp / "demos" / f"task{k}.hdf5", [_episode(rng, lang), _episode(rng, lang)], meta)
    cfg = BCConfig(name="bc-test", demos=[str(tmp / "demos")], cache=str(tmp / "cache"), out=str(tmp / "models" / "bc-test"),
                   encoder=ENCODER, image_size=32, execute_steps=2,
                   policy=dict(grid=2, dim=32, depth=1, heads=2, chunk=4, dropout=0.0))
    index = prepare_cache(cfg)
    return cfg, index, tmp


def test_prepare_cache_holds_every_frame_with_encoder_tokens(bc_setup):
    cfg, index, _ = bc_setup
    assert len(index["episodes"]) == 4 and index["tokens_n"] > 0
    ep = index["episodes"][0]
    tokens = np.load(os.path.join(cfg.cache, ep["key"], "tokens_3d.npy"))
    assert tokens.shape == (12, 2, index["tokens_n"], index["tokens_c"])
    lang = json.load(open(os.path.join(cfg.cache, "language_embeddings.json")))
    assert set(lang) == set(INSTRUCTIONS)
    v = np.asarray(lang[INSTRUCTIONS[0]])
    assert v.shape == (384,) and np.isclose(np.linalg.norm(v), 1.0, atol=1e-4)
    assert prepare_cache(cfg)["episodes"] == index["episodes"]  # a second run reuses the cache


def test_a_shared_cache_gives_each_config_only_its_own_demos(bc_setup):
    cfg, index, tmp = bc_setup
    one_file = dataclasses.replace(cfg, demos=[str(tmp / "demos" / "task1.hdf5")])
    sub = prepare_cache(one_file)
    assert len(sub["episodes"]) == 2 and {e["language"] for e in sub["episodes"]} == {INSTRUCTIONS[1]}
    assert len(json.load(open(os.path.join(cfg.cache, "index.json")))["episodes"]) == 4  # the cache keeps all
    data = ChunkDataset(cfg.cache, chunk=4, need_tokens=True, episodes=[e["key"] for e in sub["episodes"]])
    assert len(data) == 2 * 12
    with pytest.raises(ValueError, match="not cached"):
        ChunkDataset(cfg.cache, chunk=4, need_tokens=True, episodes=["0000-demo_9"])


def test_chunks_are_masked_past_the_episode_end(bc_setup):
    cfg, index, _ = bc_setup
    data = ChunkDataset(cfg.cache, chunk=4, need_tokens=True)
    assert len(data) == 4 * 12
    last = data[11]  # t = 11 of a 12-step episode
    assert last["mask"].tolist() == [1, 0, 0, 0]
    assert torch.equal(last["actions"][1], last["actions"][0])  # padded with the final action


def test_augmented_items_shift_the_views_only_and_follow_the_seed(bc_setup):
    cfg, _, _ = bc_setup
    plain = ChunkDataset(cfg.cache, chunk=4, need_tokens=True)
    shifted = ChunkDataset(cfg.cache, chunk=4, need_tokens=True, image_shift=3, token_shift=1)
    torch.manual_seed(5)
    a = [shifted[i] for i in range(6)]
    torch.manual_seed(5)
    b = [shifted[i] for i in range(6)]
    for x, y, p in zip(a, b, (plain[i] for i in range(6))):
        for k in ("agentview", "wrist", "tokens_3d"):
            assert torch.equal(x[k], y[k]) and x[k].shape == p[k].shape
        for k in ("actions", "proprio", "mask", "language"):
            assert torch.equal(x[k], p[k])
    assert any(not torch.equal(x["agentview"], p["agentview"]) for x, p in zip(a, (plain[i] for i in range(6))))
    with pytest.raises(ValueError, match="augment"):
        path = os.path.join(cfg.cache, "bad.yaml")
        open(path, "w").write("name: x\ndemos: []\ncache: c\nout: o\naugment: {crop: 4}\n")
        BCConfig.from_yaml(path)


def test_policy_overfits_demos_and_its_onnx_export_runs_in_the_runtime(bc_setup, tmp_path):
    cfg, index, tmp = bc_setup
    pcfg = cfg.policy_config(index["tokens_n"], index["tokens_c"])
    torch.manual_seed(0)
    model = GatedFusionPolicy(pcfg)
    data = ChunkDataset(cfg.cache, pcfg.chunk, need_tokens=True)
    tcfg = TrainerConfig(run_dir=str(tmp_path / "run"), max_steps=250, batch_size=16, lr=3e-3, warmup_steps=10,
                         checkpoint_every=250, log_every=25, tensorboard=False, progress=False, device="cpu")
    last = Trainer(tcfg, model, bc_objective, data).fit()
    assert last["l1"] < 0.12 and last["gripper_acc"] > 0.95, last

    card = export_policy(model, cfg, index, cfg.out, training={"test": True})
    assert card.encoder["name"] == "vega-random-tiny" and card.training["parity_max_abs_error"] < 1e-3
    runtime = OnnxPolicy(cfg.out, models_root=os.path.join(ROOT, "models"))
    runtime.reset(INSTRUCTIONS[1])
    sample = data[5]
    ep0 = index["episodes"][0]
    inputs = PolicyInputs(agentview=np.load(os.path.join(cfg.cache, ep0["key"], "agentview.npy"))[5].transpose(1, 2, 0),
                          wrist=np.load(os.path.join(cfg.cache, ep0["key"], "wrist.npy"))[5].transpose(1, 2, 0),
                          proprio=np.load(os.path.join(cfg.cache, ep0["key"], ROBOT_STATE_FILE))[5])  # raw; the runtime encodes it
    runtime.reset(ep0["language"])
    chunk = runtime.predict_chunk(inputs)
    with torch.no_grad():
        ref = model.eval()(sample["agentview"][None], sample["wrist"][None], sample["tokens_3d"][None],
                           sample["proprio"][None], sample["language"][None])[0].numpy()
    np.testing.assert_allclose(chunk, ref, atol=2e-2)  # fp16 token cache vs fresh fp32 tokens
    first, second, third = runtime.act(inputs), runtime.act(inputs), runtime.act(inputs)
    np.testing.assert_allclose(first, np.clip(chunk[0], -1, 1), atol=1e-6)
    np.testing.assert_allclose(second, np.clip(chunk[1], -1, 1), atol=1e-6)
    assert third.shape == (7,)  # execute_steps = 2: the third call predicted a fresh chunk
    with pytest.raises(PolicyArtifactError, match="no language embedding"):  # without a sentence encoder
        OnnxPolicy(cfg.out, models_root=os.path.join(ROOT, "models"), language_encoder=None).reset("fly to the moon")


def test_demo_proprio_matches_the_runtime_observation_layout():
    """The recorded ee_ori (distill.policy.demos) is the rotation vector the runtime computes from the same quaternion."""
    from distill.policy.experts import rotvec_from_matrix
    from vega_ros.geometry import quat_to_axis_angle, quat_to_matrix

    rng = np.random.default_rng(3)
    for q in rng.normal(size=(50, 4)):
        np.testing.assert_allclose(rotvec_from_matrix(quat_to_matrix(q)), quat_to_axis_angle(q), atol=1e-6)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
def test_cli_trains_with_augmentation_and_the_card_records_the_recipe(bc_setup, tmp_path):
    cfg, _, _ = bc_setup
    raw = {**dataclasses.asdict(cfg), "out": str(tmp_path / "out"), "augment": {"image_shift": 2, "token_shift": 1},
           "trainer": {"max_steps": 3, "batch_size": 4, "warmup_steps": 1, "log_every": 1, "checkpoint_every": 3,
                       "tensorboard": False, "progress": False, "device": "cpu"}}
    path = tmp_path / "bc.yaml"
    path.write_text(json.dumps(raw))  # JSON is YAML
    main(["--config", str(path), "--run-dir", str(tmp_path / "run")])
    card = json.load(open(tmp_path / "out" / "policy_card.json"))
    t = card["training"]
    assert t["steps"] == 3 and t["augment"] == {"image_shift": 2, "token_shift": 1}
    assert t["config"] == str(path) and t["trainer"]["max_steps"] == 3 and t["trainer"]["lr"] > 0
    # The artifact keeps the torch weights: a fine-tune can start from it once runs/ is gone.
    raw.update(out=str(tmp_path / "tuned"), trainer={**raw["trainer"], "max_steps": 1, "init_from": str(tmp_path / "out")})
    path.write_text(json.dumps(raw))
    main(["--config", str(path), "--run-dir", str(tmp_path / "tuned_run"), "--no-export"])
    from distill.training.checkpoint import latest_checkpoint, resolve_checkpoint

    assert resolve_checkpoint(str(tmp_path / "out")) == str(tmp_path / "out")
    exported = load_file(str(tmp_path / "out" / "model.safetensors"))
    first = load_file(os.path.join(latest_checkpoint(str(tmp_path / "run")), "model.safetensors"))
    assert exported.keys() == first.keys() and all(torch.equal(exported[k], first[k]) for k in exported)
    assert "model.safetensors" in card["files"]


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
def test_export_compares_in_eval_mode_even_with_dropout(bc_setup, tmp_path):
    """torch.onnx.export puts modules back in their previous mode; a policy left in train mode must still
    be exported and parity-checked with dropout off (a 0.2 error came from exactly that)."""
    cfg, index, _ = bc_setup
    pcfg = cfg.policy_config(index["tokens_n"], index["tokens_c"])
    pcfg.dropout = 0.5
    model = GatedFusionPolicy(pcfg).train()
    card = export_policy(model, dataclasses.replace(cfg, out=str(tmp_path / "p")), index, str(tmp_path / "p"), training={})
    assert card.training["parity_max_abs_error"] < 1e-4


def test_cached_robot_states_are_encoded_per_config_and_old_caches_are_filled_in(bc_setup):
    cfg, index, _ = bc_setup
    path = os.path.join(cfg.cache, index["episodes"][0]["key"], ROBOT_STATE_FILE)
    state = np.load(path)
    assert state.shape == (12, 9)
    np.testing.assert_allclose(state[:, 3:7], np.tile([0, 0, 0, 1], (12, 1)))  # ee_ori zeros: the identity
    os.remove(path)  # as in a cache written before robot_state.npy existed
    prepare_cache(cfg)
    np.testing.assert_array_equal(np.load(path), state)
    rot6d = ChunkDataset(cfg.cache, chunk=4, need_tokens=True)[0]["proprio"]
    rotvec = ChunkDataset(cfg.cache, chunk=4, need_tokens=True, proprio_layout=PROPRIO_LAYOUT)[0]["proprio"]
    assert rot6d.shape == (11,) and rotvec.shape == (8,)
    assert cfg.policy_config(4, 8).proprio_dim == 11
    with pytest.raises(ValueError, match="proprio"):
        dataclasses.replace(cfg, proprio="euler")


def test_a_card_with_an_unknown_proprio_layout_is_refused(tmp_path):
    import shutil

    src = os.path.join(ROOT, "models", "bc-fused-brisk-ft")
    dst = tmp_path / "bc-fused-brisk-ft"
    shutil.copytree(src, dst)
    card = json.load(open(dst / "policy_card.json"))
    card["proprio_layout"] = ["ee_pos_x", "ee_pos_y", "ee_pos_z", "ee_euler_r", "ee_euler_p", "ee_euler_y", "gripper_q0", "gripper_q1"]
    json.dump(card, open(dst / "policy_card.json", "w"))
    with pytest.raises(PolicyArtifactError, match="proprio_layout"):
        OnnxPolicy(str(dst), models_root=os.path.join(ROOT, "models"))


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
@pytest.mark.parametrize("bias", [20.0, -20.0])
def test_stream_report_sees_which_stream_a_saturated_gate_passes(bc_setup, tmp_path, bias):
    """A gate held at 1 passes only the 3D tokens (shuffling the images changes nothing), at 0 only the images."""
    from distill.policy.streams import load_policy, stream_report
    from distill.policy.streams import main as streams_main

    cfg, index, _ = bc_setup
    torch.manual_seed(1)
    model = GatedFusionPolicy(cfg.policy_config(index["tokens_n"], index["tokens_c"]))
    with torch.no_grad():
        model.gate.linear.weight.zero_()
        model.gate.linear.bias.fill_(bias)
    out = str(tmp_path / "p")
    export_policy(model, dataclasses.replace(cfg, out=out), index, out, training={})
    loaded, card = load_policy(out)
    assert card.fusion == "fused" and torch.equal(loaded.gate.linear.bias, model.gate.linear.bias)
    data = ChunkDataset(cfg.cache, model.cfg.chunk, need_tokens=True)
    report = stream_report(loaded, data, frames=40, batch_size=8)
    passed, blocked = ("3d", "semantic") if bias > 0 else ("semantic", "3d")
    assert report["frames"] == 40
    blocked_change = abs(report["l1_shuffled"][blocked] - report["l1"])
    passed_change = abs(report["l1_shuffled"][passed] - report["l1"])  # small: an untrained model
    assert blocked_change < 1e-6 and passed_change > 1e-5, (blocked_change, passed_change)
    expected_gate = 1.0 if bias > 0 else 0.0
    for cam in ("agentview", "wrist"):
        assert report["gate"][cam]["mean"] == pytest.approx(expected_gate, abs=1e-6)
        assert report["share_3d"][cam] == pytest.approx(expected_gate, abs=1e-6)
    assert report["gate_map"].shape == (2, model.cfg.grid, model.cfg.grid)
    picture = tmp_path / "streams.png"
    assert streams_main(["--policy", out, "--cache", cfg.cache, "--frames", "16", "--out", str(picture)]) == 0
    assert picture.stat().st_size > 0 and json.load(open(tmp_path / "streams.json"))["frames"] == 16


POLICY_CONFIGS = Path(ROOT) / "config" / "policy"
RECIPES = {"side-dart": None, "side-xl": "side-dart", "brisk-ft": "side-xl", "object": None, "goal": None, "libero10": None}  # recipe -> the one it starts from
VARIANTS = ("fused", "3d-only", "semantic-only")


def _variant_configs(recipe: str) -> dict[str, dict]:
    """The three variants of one recipe file, less what must differ (name, out, variant, fusion, init_from), checked."""
    cfgs = {}
    for v in VARIANTS:
        cfg = to_dict(BCConfig.from_yaml(POLICY_CONFIGS / f"bc-{recipe}.yaml", [f"variant={v}"]))
        assert cfg.pop("name") == f"bc-{v}-{recipe}" and cfg.pop("out") == f"models/bc-{v}-{recipe}"
        assert cfg.pop("variant") == v and cfg["policy"].pop("fusion") == v
        start = RECIPES[recipe]
        assert cfg["trainer"].pop("init_from", None) == (start and f"runs/bc-{v}-{start}")
        cfgs[v] = cfg
    return cfgs


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_the_variants_of_a_recipe_differ_only_in_the_fusion(recipe):
    """scripts/policy_study.sh trains fused, 3d-only and semantic-only from config/policy/bc-<recipe>.yaml with
    --variant: an ablation is only fair if the demos, cache, encoder, model size and trainer budget are the same."""
    cfgs = _variant_configs(recipe)
    assert cfgs["3d-only"] == cfgs["fused"] and cfgs["semantic-only"] == cfgs["fused"]
    assert {p.name for p in POLICY_CONFIGS.glob("*.yaml")} == {"base.yaml", "demos.yaml"} | {f"bc-{r}.yaml" for r in RECIPES}


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_brisk_ft_recipe_reproduces_the_shipped_policy_card(variant):
    """models/bc-<variant>-brisk-ft/policy_card.json records the settings it was trained with; the recipe gives them."""
    card = json.load(open(Path(ROOT) / "models" / f"bc-{variant}-brisk-ft" / "policy_card.json"))
    cfg = BCConfig.from_yaml(POLICY_CONFIGS / "bc-brisk-ft.yaml", [f"variant={variant}"])
    t = card["training"]
    assert card["name"] == cfg.name and card["fusion"] == variant and t["demos"] == cfg.demos
    assert card["image_size"] == cfg.image_size and card["execute_steps"] == cfg.execute_steps
    assert card["proprio_layout"] == list(cfg.proprio_layout)
    assert {k: t["trainer"][k] for k in cfg.trainer} == to_dict(cfg.trainer)
    assert {k: t["policy_config"][k] for k in cfg.policy} == to_dict(cfg.policy)


def test_a_fine_tune_without_its_earlier_run_names_the_recipe_that_makes_it(tmp_path, monkeypatch, capsys):
    """A fresh clone has no runs/: training bc-brisk-ft stops before any work, naming the key, the path and the recipe."""
    (tmp_path / "config").mkdir()
    shutil.copytree(POLICY_CONFIGS, tmp_path / "config" / "policy")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["--config", "config/policy/bc-brisk-ft.yaml", "--variant", "3d-only"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "error: config/policy/bc-brisk-ft.yaml: trainer.init_from: runs/bc-3d-only-side-xl does not exist; "
        "train the recipe that produces it first: --config config/policy/bc-side-xl.yaml --set variant=3d-only\n")
    assert not (tmp_path / "data").exists()  # nothing was prepared
    with pytest.raises(SystemExit):
        main(["--config", "config/policy/bc-side-dart.yaml"])  # the first stage: its demos are not recorded here
    assert capsys.readouterr().err.startswith(
        "error: config/policy/bc-side-dart.yaml: demos[0]: data/demos_side/libero_spatial does not exist; record the demos first")


def test_a_contradicting_fusion_and_an_unknown_variant_are_refused():
    with pytest.raises(ConfigError, match=r"^--set: policy.fusion: fused contradicts variant 3d-only$"):
        BCConfig.from_yaml(POLICY_CONFIGS / "bc-side-dart.yaml", ["variant=3d-only", "policy.fusion=fused"])
    with pytest.raises(ConfigError, match=r"variant: expected one of fused, 3d-only, semantic-only; got '2d-only'"):
        BCConfig.from_yaml(POLICY_CONFIGS / "bc-side-dart.yaml", ["variant=2d-only"])


def test_a_v2_student_gives_the_policy_its_frame_tokens_in_training_and_at_run_time(bc_setup, tmp_path):
    """The default student is per-frame (format version 2: frame.onnx, no encoder.onnx): the cache holds
    frame.onnx's tokens output (at the card's canonical focal), the policy card pins frame.onnx's sha256,
    the runtime feeds the same tokens, and another student under the same name is refused by name."""
    from tests.fixtures.artifacts import export_small_v2
    from vega_ros.engine.selection import create_engine

    _, _, tmp = bc_setup
    models = tmp_path / "models"
    student = export_small_v2(models / "test-small-v2", with_heads=False, width=56)
    cfg = BCConfig(name="bc-v2", demos=[str(tmp / "demos")], cache=str(tmp_path / "cache"), out=str(models / "bc-v2"),
                   encoder=student.path, image_size=32, execute_steps=2,
                   policy=dict(grid=2, dim=32, depth=1, heads=2, chunk=4, dropout=0.0))
    index = prepare_cache(cfg)
    engine, _ = create_engine(student.path, "onnxruntime-cpu", intra_op_threads=1)
    assert engine.token_graph == "frame.onnx" and index["encoder_sha256"] == student.sha256("frame.onnx")
    ep0 = index["episodes"][0]
    cached = np.load(os.path.join(cfg.cache, ep0["key"], "tokens_3d.npy"))
    assert cached.shape == (12, 2, student.card.tokens_n, student.card.tokens_c)

    agentview = np.load(os.path.join(cfg.cache, ep0["key"], "agentview.npy"))[3].transpose(1, 2, 0)  # [32, 32, 3] uint8
    wrist = np.load(os.path.join(cfg.cache, ep0["key"], "wrist.npy"))[3].transpose(1, 2, 0)
    both = np.stack([resize_rgb(agentview, 56), resize_rgb(wrist, 56)])
    tokens = engine.tokens(both)
    np.testing.assert_allclose(tokens, engine.run_frame(both, [60.0, 60.0]).tokens, atol=1e-6)
    np.testing.assert_allclose(tokens, engine.run_frame(both, [25.0, 90.0]).tokens, atol=1e-6)  # focal-free
    assert np.abs(tokens).max() > 0

    pcfg = cfg.policy_config(index["tokens_n"], index["tokens_c"])
    torch.manual_seed(0)
    model = GatedFusionPolicy(pcfg)
    export_policy(model, cfg, index, cfg.out, training={"test": True})
    runtime = OnnxPolicy(cfg.out, models_root=str(models))
    runtime.reset(ep0["language"])
    proprio = np.load(os.path.join(cfg.cache, ep0["key"], ROBOT_STATE_FILE))[3]
    chunk = runtime.predict_chunk(PolicyInputs(agentview=agentview, wrist=wrist, proprio=proprio))
    sample = ChunkDataset(cfg.cache, pcfg.chunk, need_tokens=True)[3]
    with torch.no_grad():
        ref = model.eval()(sample["agentview"][None], sample["wrist"][None], torch.from_numpy(tokens)[None],
                           sample["proprio"][None], sample["language"][None])[0].numpy()
    np.testing.assert_allclose(chunk, ref, atol=1e-3)

    shutil.rmtree(models / "test-small-v2")
    export_small_v2(models / "test-small-v2", seed=1, with_heads=False, width=56)  # another student, same name
    with pytest.raises(PolicyArtifactError, match="test-small-v2/frame.onnx is not the encoder"):
        OnnxPolicy(cfg.out, models_root=str(models))
