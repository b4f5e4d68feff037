"""distill.training: checkpoints, the resumable batch order, the schedule, and kill -9 resume."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from distill.training import checkpoint as ckpt
from distill.training.sampler import StepBatchSampler
from distill.training.trainer import warmup_cosine

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _trained_pair():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 ** s)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 4)).pow(2).mean().backward()
        opt.step()
        sched.step()
    return model, opt, sched


def test_checkpoint_roundtrip_restores_weights_optimizer_scheduler_and_rng(tmp_path):
    model, opt, sched = _trained_pair()
    path = ckpt.save_checkpoint(str(tmp_path), 3, model, opt, sched, extra={"note": "x"})
    expected_draw = torch.rand(4)  # the RNG stream right after the save

    torch.manual_seed(123)
    model2 = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    opt2 = torch.optim.AdamW(model2.parameters(), lr=1e-2)
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda s: 0.5 ** s)
    loaded = ckpt.load_checkpoint(ckpt.latest_checkpoint(str(tmp_path)), model2, opt2, sched2)
    assert loaded.path == path and loaded.step == 3 and loaded.extra == {"note": "x"}
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for k in s1["state"]:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(s1["state"][k][name], s2["state"][k][name])
    assert sched2.last_epoch == 3 and sched2.get_last_lr() == sched.get_last_lr()
    assert torch.equal(torch.rand(4), expected_draw)


def test_checkpoints_are_pruned_and_latest_points_at_the_newest(tmp_path):
    model, opt, sched = _trained_pair()
    for step in (1, 2, 3, 4):
        ckpt.save_checkpoint(str(tmp_path), step, model, opt, sched, keep_last=2)
    root = tmp_path / "checkpoints"
    assert sorted(os.listdir(root)) == ["latest", "step_00000003", "step_00000004"]  # no temp dirs left
    assert ckpt.latest_checkpoint(str(tmp_path)).endswith("step_00000004")
    assert ckpt.latest_checkpoint(str(tmp_path / "nothing")) is None


def test_corrupt_or_mismatched_checkpoint_names_the_file(tmp_path):
    model, opt, sched = _trained_pair()
    path = ckpt.save_checkpoint(str(tmp_path), 1, model, opt, sched)
    weights = os.path.join(path, "model.safetensors")
    with open(weights, "r+b") as f:
        f.truncate(os.path.getsize(weights) // 2)
    with pytest.raises(ckpt.CheckpointError, match="model.safetensors"):
        ckpt.load_checkpoint(path, model, opt, sched)
    path = ckpt.save_checkpoint(str(tmp_path), 2, model, opt, sched)
    with pytest.raises(ckpt.CheckpointError, match="does not match the model"):
        ckpt.load_checkpoint(path, nn.Linear(4, 1))
    os.remove(os.path.join(path, "state.json"))
    with pytest.raises(ckpt.CheckpointError, match="state.json"):
        ckpt.load_checkpoint(path, model)


def _fit_tiny(run_dir, max_steps, init_from=None):
    from distill.training.trainer import Trainer, TrainerConfig
    from tests.peers.train_tiny import build

    model, data = build(0.0)

    def objective(m, batch, step):
        x, y = batch
        loss = nn.functional.mse_loss(m(x), y)
        return loss, {"mse": float(loss.detach())}

    cfg = TrainerConfig(run_dir=str(run_dir), max_steps=max_steps, batch_size=5, lr=3e-3, warmup_steps=2, checkpoint_every=4,
                        log_every=1, tensorboard=False, progress=False, device="cpu", init_from=init_from)
    trainer = Trainer(cfg, model, objective, data)
    trainer.fit()
    return trainer, model


def test_init_from_starts_a_fresh_run_from_another_runs_weights(tmp_path):
    _, first = _fit_tiny(tmp_path / "stage1", 8)
    trainer, second = _fit_tiny(tmp_path / "stage2", 0, init_from=str(tmp_path / "stage1"))  # 0 steps: weights only
    assert trainer.step == 0  # the schedule and step start anew
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    _, fresh = _fit_tiny(tmp_path / "fresh", 0)
    assert not torch.equal(fresh[0].weight, first[0].weight)

    # a checkpoint dir works too, and the run's own checkpoint wins over init_from on restart
    _, stage2 = _fit_tiny(tmp_path / "stage2b", 4, init_from=ckpt.checkpoint_dir(str(tmp_path / "stage1"), 4))
    trainer, again = _fit_tiny(tmp_path / "stage2b", 4, init_from=str(tmp_path / "stage1"))
    assert trainer.step == 4
    assert torch.equal(again[0].weight, stage2[0].weight)

    with pytest.raises(ckpt.CheckpointError, match="neither a checkpoint"):
        _fit_tiny(tmp_path / "stage2c", 1, init_from=str(tmp_path / "nothing-here"))


def test_step_sampler_resumes_mid_epoch_and_shards_ranks():
    full = list(StepBatchSampler(10, 3, max_steps=9, seed=5))
    resumed = list(StepBatchSampler(10, 3, max_steps=9, seed=5, start_step=4))
    assert resumed == full[4:]
    # every epoch is a permutation: the first 10 indices drawn cover the dataset once
    assert sorted(sum(full, [])[:10]) == list(range(10))
    r0 = list(StepBatchSampler(10, 2, max_steps=5, seed=1, rank=0, world_size=2))
    r1 = list(StepBatchSampler(10, 2, max_steps=5, seed=1, rank=1, world_size=2))
    single = StepBatchSampler(10, 4, max_steps=5, seed=1)
    for step in range(5):
        assert r0[step] + r1[step] == single.global_indices(step).tolist()


def test_warmup_cosine_schedule_known_values():
    assert warmup_cosine(0, 10, 110, 0.0) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 110, 0.0) == pytest.approx(1.0)
    assert warmup_cosine(60, 10, 110, 0.0) == pytest.approx(0.5)
    assert warmup_cosine(110, 10, 110, 0.1) == pytest.approx(0.1)


def _run_tiny(run_dir, max_steps, kill_at=None):
    cmd = [sys.executable, os.path.join(ROOT, "tests", "peers", "train_tiny.py"), str(run_dir), str(max_steps)]
    if kill_at is not None:
        cmd += ["--kill-at-step", str(kill_at)]
    return subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=300)


def _losses(run_dir):
    rows = [json.loads(line) for line in open(os.path.join(run_dir, "metrics.jsonl"))]
    return {r["step"]: r["loss"] for r in rows}


def test_kill_9_then_restart_logs_the_same_losses_as_an_uninterrupted_run(tmp_path):
    straight = _run_tiny(tmp_path / "straight", 14)
    assert straight.returncode == 0, straight.stderr[-2000:]

    killed = _run_tiny(tmp_path / "killed", 14, kill_at=10)  # dies inside step 10 (0-based); last checkpoint: step 8
    assert killed.returncode == -signal.SIGKILL
    assert ckpt.latest_checkpoint(str(tmp_path / "killed")).endswith("step_00000008")
    resumed = _run_tiny(tmp_path / "killed", 14)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout + resumed.stderr

    a, b = _losses(tmp_path / "straight"), _losses(tmp_path / "killed")
    assert sorted(a) == sorted(b) == list(range(1, 15))
    np.testing.assert_array_equal([b[s] for s in range(1, 15)], [a[s] for s in range(1, 15)])
    assert os.path.getsize(tmp_path / "straight" / "curves.png") > 5000  # a finished run draws its curves


def test_curves_smoothing_and_picture(tmp_path):
    from distill.training.curves import ema, plot_curves, read_metrics

    assert ema([2.0, 2.0, 2.0], 0.9) == pytest.approx([2.0, 2.0, 2.0])  # bias-corrected: no ramp from 0
    assert ema([1.0, float("nan"), 3.0], 0.5) == pytest.approx([1.0, 1.0, 1 + 2 * 0.5 / 0.75])
    path = tmp_path / "metrics.jsonl"
    rows = [{"step": s, "loss": 1.0 / s, "probe/depth": 0.5, "lr": 1e-3, "images_per_s": 9.0} for s in range(1, 30)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + json.dumps({**rows[-1], "loss": 7.0}) + "\n")
    assert read_metrics(path)[-1]["loss"] == 7.0 and len(read_metrics(path)) == 29  # a re-logged step wins
    keys = plot_curves(path, tmp_path / "c.png")
    assert keys == ["loss", "probe/depth", "lr"] and (tmp_path / "c.png").stat().st_size > 5000
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(ValueError, match="no logged steps"):
        plot_curves(tmp_path / "empty.jsonl", tmp_path / "e.png")


def test_torchrun_two_cpu_processes_match_one_process_with_the_same_global_batch(tmp_path):
    from safetensors.torch import load_file

    script = os.path.join(ROOT, "tests", "peers", "train_tiny.py")
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    ddp = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", script,
         str(tmp_path / "ddp"), "8", "--batch-size", "3", "--deterministic"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = subprocess.run([sys.executable, script, str(tmp_path / "one"), "8", "--batch-size", "6", "--deterministic"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr[-3000:]
    w_ddp = load_file(os.path.join(ckpt.latest_checkpoint(str(tmp_path / "ddp")), "model.safetensors"))
    w_one = load_file(os.path.join(ckpt.latest_checkpoint(str(tmp_path / "one")), "model.safetensors"))
    assert w_ddp.keys() == w_one.keys()
    for k in w_one:
        torch.testing.assert_close(w_ddp[k], w_one[k], rtol=1e-5, atol=1e-6)
    assert list(_losses(tmp_path / "ddp")) == list(range(1, 9))  # rank 0 alone writes the log
