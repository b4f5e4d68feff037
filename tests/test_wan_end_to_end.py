"""The WAN path end to end on a tiny random WAN: extract -> cache -> distil (teacher terms on) -> export."""

import json
import os
import subprocess
import sys

import yaml

from distill.teacher.presets import save_random_checkpoint
from vega_ros.artifact import load_artifact

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_tiny_wan_extract_distil_export(tiny_libero, tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT}
    ckpt = save_random_checkpoint(tmp_path / "wan", "tiny")
    cache = tmp_path / "cache"
    extract = subprocess.run(
        [sys.executable, "-m", "distill.teacher.extract", "--checkpoint", str(ckpt), "--data", str(tiny_libero),
         "--out", str(cache), "--config", os.path.join(ROOT, "config", "teacher", "tiny-cpu.yaml"),
         "--split", "train", "--resolution", "64", "64"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert extract.returncode == 0, extract.stderr[-3000:]
    manifest = json.load(open(cache / "manifest.json"))
    assert manifest["teacher"]["block"] == 2 and len(manifest["clips"]) == 4  # the 4 train clips
    assert manifest["feature"]["shape"] == [24, 4, 4]  # tiny WAN width 24 on a 64/16 grid

    raw = yaml.safe_load(open(os.path.join(ROOT, "config", "distill", "tiny-cpu.yaml")))
    raw["data"]["root"] = str(tiny_libero)
    raw["teacher_cache"] = str(cache)
    raw["model"]["teacher_dim"] = 24
    raw["losses"].update(feature=1.0, global_align=0.1)
    cfg = tmp_path / "wan-tiny.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    run_dir = tmp_path / "run"
    train = subprocess.run([sys.executable, "-m", "distill.train", "--config", str(cfg), "--run-dir", str(run_dir), "--max-steps", "4"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert train.returncode == 0, train.stderr[-3000:]
    logs = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
    assert len(logs) == 4 and all("feature" in r and "global" in r for r in logs)

    export = subprocess.run([sys.executable, "-m", "distill.export", "--run", str(run_dir), "--name", "wan-tiny-student",
                             "--out", str(tmp_path / "student")], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert export.returncode == 0, export.stderr[-3000:]
    card = load_artifact(str(tmp_path / "student")).card
    assert card.training["wan_teacher"] is True and "feature" in card.training["loss_terms"]
    assert card.depth_scale.value == "relative" and card.tokens_n == 16
