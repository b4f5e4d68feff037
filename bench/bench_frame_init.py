"""Benchmark: where a training run started from a shipped artifact begins (``distill.frame_init``).

The student is rebuilt from the artifact's ``frame.onnx`` and scored with the recipe's own loss
(``FrameObjective``: silog + gradient + metric, confidence-weighted) on ``--batches`` batches of
rendered training frames, without a step taken. Rows:

- ``eval mode``: the shipped model as the robot runs it (BatchNorm on its running statistics);
- ``train mode, identity BatchNorm``: what step 0 of training would see without recalibration
  (batch statistics re-normalise every folded channel);
- ``train mode, recalibrated``: after ``recalibrate_batchnorm`` on one other batch (what
  ``frame_recipe.train`` does);
- ``eval mode, recalibrated``: unchanged from the first row, or the recalibration is wrong;
- ``random init, train mode``: the floor a run from scratch starts at.

Each row runs on a copy of the model (train-mode passes move the running statistics). Without
``--data`` it renders 24 LIBERO training clips (``config/data/libero_sim.yaml``, about a minute on one
core) into ``data/bench_frame_init`` and reads those.

    .venv/bin/python bench/bench_frame_init.py [--data data/libero_sim] [--model models/vega-frame-v2] [--batches 4]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from distill import frame_init  # noqa: E402
from distill import frame_recipe as fr  # noqa: E402


def score(model: torch.nn.Module, objective: fr.FrameObjective, batches: list[dict], train: bool) -> dict[str, float]:
    """Mean loss terms of ``model`` (a copy, in train or eval mode) over ``batches``, no gradient."""
    model = copy.deepcopy(model).train(train)
    rows = []
    with torch.no_grad():
        for b in batches:
            loss, logs = objective(model, b, 0)
            rows.append((float(loss), logs["metric"], logs["silog"]))
    loss, metric, silog = np.mean(rows, 0)
    return {"loss": float(loss), "metric": float(metric), "silog": float(silog)}


def render_small(out: str, clips: int = 24) -> str:
    """Render (or resume) ``clips`` LIBERO training clips of the default render config into ``out``."""
    from pathlib import Path

    from distill.data.config import load_config
    from distill.data.render import run

    os.environ.setdefault("MUJOCO_GL", "egl")
    cfg = load_config(os.path.join(ROOT, "config", "data", "libero_sim.yaml"),
                      [f"clips.train={clips}", "clips.val=0", "clips.test=0"])
    run(cfg, Path(out), workers=1, progress=False)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=None, help="a rendered root (data/libero_sim, data/procedural) or a data spec; "
                    "default: render 24 LIBERO clips into data/bench_frame_init")
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "vega-frame-v2"))
    ap.add_argument("--config", default=os.path.join(ROOT, "config", "distill", "student-v2-mix5-224.yaml"))
    ap.add_argument("--cache", default=None, help="decoded-frame cache (default: <data>_frames_bench)")
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.data is None:
        args.data = render_small(os.path.join(ROOT, "data", "bench_frame_init"))
    cache = args.cache or args.data.rstrip("/") + "_frames_bench"
    cfg = fr.FrameDistillConfig.from_yaml(args.config, [f"data.root={args.data}", f"data.cache={cache}", "data.repeats=[1]"])
    torch.manual_seed(0)
    data = fr.build_frame_dataset(cfg, 0)
    need = (args.batches + 1) * args.batch_size
    if len(data) < need:
        raise SystemExit(f"{args.data} has {len(data)} training frames; {need} are needed for {args.batches} batches + 1")
    order = np.random.default_rng(0).permutation(len(data))
    groups = [order[k * args.batch_size:(k + 1) * args.batch_size] for k in range(args.batches + 1)]
    batches = [fr.collate([data[int(i)] for i in g]) for g in groups]
    calib, scored = batches[0], batches[1:]
    objective = fr.FrameObjective(cfg.losses, channels_last=False)
    model = fr.FrameModel(cfg.model, cfg.losses)
    student, _ = frame_init.student_from_artifact(args.model)
    model.student.load_state_dict(student.state_dict())
    rows = [("eval mode", score(model, objective, scored, False)),
            ("train mode, identity BatchNorm", score(model, objective, scored, True))]
    frame_init.recalibrate_batchnorm(model.student, calib["image"], calib["focal_px"])
    rows += [("train mode, recalibrated", score(model, objective, scored, True)),
             ("eval mode, recalibrated", score(model, objective, scored, False)),
             ("random init, train mode", score(fr.FrameModel(cfg.model, cfg.losses), objective, scored, True))]
    print(f"{os.path.basename(args.model.rstrip('/'))} on {args.data}: {args.batches} batches x {args.batch_size} frames "
          f"(of {len(data)}), recalibrated on one other batch\n")
    print("| start | loss | metric | silog | loss vs eval mode |\n|---|---|---|---|---|")
    base = rows[0][1]["loss"]
    for name, r in rows:
        print(f"| {name} | {r['loss']:.4f} | {r['metric']:.4f} | {r['silog']:.4f} | {r['loss'] / base:.2f}x |")


if __name__ == "__main__":
    main()
