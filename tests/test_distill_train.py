"""distill.train on the tiny LIBERO render: the recipe trains, and a kill -9 resumes exactly."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml

from distill.config import from_dict, read_yaml
from distill.recipe import DistillModel, DistillObjective, LossWeights, ModelConfig, teacher_tokens
from distill.train import DistillConfig, build_dataset, collate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_CFG = os.path.join(ROOT, "config", "distill", "tiny-cpu.yaml")


def _config_for(data_root, tmp_path, **trainer):
    raw = yaml.safe_load(open(TINY_CFG))
    raw["data"]["root"] = str(data_root)
    raw["trainer"].update(trainer)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _train_cmd(cfg_path, run_dir, max_steps):
    return [sys.executable, "-m", "distill.train", "--config", str(cfg_path), "--run-dir", str(run_dir), "--max-steps", str(max_steps)]


def _losses(run_dir):
    return {r["step"]: r["loss"] for r in map(json.loads, open(os.path.join(run_dir, "metrics.jsonl")))}


def test_teacher_tokens_resample_to_the_student_grid():
    feats = torch.arange(2 * 3 * 5 * 4 * 4, dtype=torch.float32).reshape(2, 3, 5, 4, 4)
    tok = teacher_tokens(feats, (4, 4))
    assert tok.shape == (2, 3, 16, 5)
    assert torch.equal(tok[1, 2, 6], feats[1, 2, :, 1, 2])  # token 6 = row 1, col 2
    assert teacher_tokens(feats, (2, 2)).shape == (2, 3, 4, 5)


def test_every_term_contributes_and_backpropagates(tiny_libero, tmp_path):
    cfg = DistillConfig.from_yaml(_config_for(tiny_libero, tmp_path))
    weights = LossWeights(probe=1, verifier=1, cross_view=0.1, feature=1, global_align=1)
    torch.manual_seed(0)
    model = DistillModel(ModelConfig(**{**cfg.model.__dict__, "teacher_dim": 24}), weights)
    batch = collate([build_dataset(cfg)[i] for i in range(2)])
    batch["teacher"] = torch.randn(2, 4, 24, 3, 3)  # a coarser teacher grid than the student's 4x4
    loss, logs = DistillObjective(weights)(model, batch, 0)
    assert {"probe/points", "probe/depth", "probe/camera", "verifier", "cross_view", "feature", "global"} <= set(logs)
    assert all(np.isfinite(v) for v in logs.values())
    loss.backward()
    assert model.teacher_proj.weight.grad.abs().sum() > 0
    assert model.verifier.head.parameters().__next__().grad is not None
    assert model.student.backbone.parameters().__next__().grad.abs().sum() > 0


def test_probe_camera_weight_scales_only_the_camera_term(tiny_libero, tmp_path):
    cfg = DistillConfig.from_yaml(_config_for(tiny_libero, tmp_path))
    batch = collate([build_dataset(cfg)[i] for i in range(2)])
    torch.manual_seed(0)
    model = DistillModel(cfg.model, LossWeights(probe=1, verifier=0, cross_view=0)).eval()
    with torch.no_grad():
        base, logs = DistillObjective(LossWeights(probe=1, verifier=0, cross_view=0))(model, batch, 0)
        heavy, _ = DistillObjective(LossWeights(probe=1, probe_camera=10, verifier=0, cross_view=0))(model, batch, 0)
    assert logs["probe/camera"] > 0
    assert float(heavy - base) == pytest.approx(9 * logs["probe/camera"], rel=1e-4)


def test_a_second_stage_starts_from_the_first_and_its_export_card_names_both(tiny_libero, tmp_path, capsys):
    from distill.recipe import export_modules_from_run
    from distill.train import main as train_main

    stage1 = tmp_path / "stage1"
    train_main(["--config", str(_config_for(tiny_libero, tmp_path, progress=False, tensorboard=False)),
                "--run-dir", str(stage1), "--max-steps", "2"])
    stage2 = ["--set", "name=tiny-stage2", "--set", "losses.probe_camera=10", "--set", f"trainer.init_from={stage1}"]
    train_main(["--config", str(_config_for(tiny_libero, tmp_path, progress=False, tensorboard=False)), *stage2,
                "--run-dir", str(tmp_path / "stage2"), "--max-steps", "1"])
    saved = read_yaml(tmp_path / "stage2" / "config.yaml")  # the run's config as used, overrides included
    assert saved.pop("run_dir") == str(tmp_path / "stage2") and saved["trainer"]["max_steps"] == 1
    assert from_dict(DistillConfig, saved).losses.probe_camera == 10.0 and saved["trainer"]["init_from"] == str(stage1)
    with pytest.raises(SystemExit):
        train_main(["--config", str(tmp_path / "cfg.yaml"), "--set", f"trainer.init_from={tmp_path / 'no_run'}",
                    "--run-dir", str(tmp_path / "stage3")])
    assert capsys.readouterr().err == (f"error: {tmp_path / 'cfg.yaml'}: trainer.init_from: {tmp_path / 'no_run'} does not "
                                       "exist; a run writes it, and none has been made here\n")
    assert not (tmp_path / "stage3").exists()
    with pytest.raises(SystemExit):
        train_main(["--config", str(tmp_path / "cfg.yaml"), "--set", "data.root=data/nowhere", "--run-dir", str(tmp_path / "stage3")])
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'cfg.yaml'}: data.root: data/nowhere does not exist; render it first")

    _, _, fields = export_modules_from_run(str(tmp_path / "stage2"))
    training = fields["training"]
    assert training["config"] == "tiny-stage2" and training["step"] == 1
    assert training["loss_weights"]["probe_camera"] == 10.0 and training["wan_teacher"] is False  # no stage had one
    [first] = training["earlier_stages"]
    assert first["run"] == str(stage1) and first["checkpoint"] == "step_00000002"
    assert first["config"] == "tiny-cpu" and first["loss_weights"]["probe_camera"] == 1.0


def test_kill_9_during_training_resumes_with_the_uninterrupted_losses(tiny_libero, tmp_path):
    cfg_path = _config_for(tiny_libero, tmp_path, checkpoint_every=4)
    env = {**os.environ, "PYTHONPATH": ROOT}
    straight = subprocess.run(_train_cmd(cfg_path, tmp_path / "straight", 10), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr[-3000:]

    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(_train_cmd(cfg_path, run_dir, 10), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.exists(run_dir / "metrics.jsonl") and len(_losses(run_dir)) >= 6:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed"
    resumed = subprocess.run(_train_cmd(cfg_path, run_dir, 10), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout + resumed.stderr

    a, b = _losses(tmp_path / "straight"), _losses(run_dir)
    assert sorted(a) == sorted(b) == list(range(1, 11))
    np.testing.assert_array_equal([b[s] for s in range(1, 11)], [a[s] for s in range(1, 11)])


@pytest.mark.slow
def test_torchrun_two_cpu_processes_run_the_recipe(tiny_libero, tmp_path):
    cfg_path = _config_for(tiny_libero, tmp_path)
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "distill.train", "--config", str(cfg_path), "--run-dir", str(tmp_path / "ddp"), "--max-steps", "6"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert sorted(_losses(tmp_path / "ddp")) == list(range(1, 7))
    assert os.path.isdir(tmp_path / "ddp" / "checkpoints" / "step_00000006")


def test_data_root_is_a_data_spec(tmp_path):
    """``data.root`` takes any ``distill.data.sources`` spec: here analytic clips, augmented, at the model's size."""
    raw = yaml.safe_load(open(TINY_CFG))
    h, w = raw["model"]["image_size"]
    cfg = DistillConfig.from_yaml(_config_for(f"synthetic:3:{h}x{w}", tmp_path))
    data = build_dataset(cfg)
    assert len(data) == 3
    batch = collate([data[i] for i in range(2)])
    assert tuple(batch["images"].shape) == (2, cfg.data.num_frames, 3, h, w)
    plain = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, augment=False))
    assert not torch.equal(data[0]["images"], build_dataset(plain)[0]["images"])  # photometric augmentation applied
    assert torch.equal(data[0]["images"], data[0]["images"])  # the same draw for the same index
    cfg.model.image_size = [h * 2, w]
    with pytest.raises(ValueError, match="image_size"):
        build_dataset(cfg)
