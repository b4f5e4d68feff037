"""Train the student: ``python -m distill.train --config config/distill/NAME.yaml [--run-dir DIR] [--set KEY=VALUE ...]``.

A config with ``recipe: frame`` trains the per-frame student (format version 2) with
:mod:`distill.frame_recipe`; any other trains the clip recipe below (:mod:`distill.recipe`).

The same command runs under ``torchrun --nproc_per_node=N`` (DDP; gloo on CPU, NCCL on GPU).
A run resumes from its newest checkpoint when restarted with the same config and run dir.
Outputs in the run dir: ``checkpoints/``, ``metrics.jsonl``, ``tensorboard/``, ``images/``
(depth and cloud pictures every ``trainer.image_every`` steps) and ``config.yaml`` (as run).

Config (YAML)::

    name: sim-cpu
    data: {root: data/libero_sim, split: train, num_frames: 4, min_gap: 5, samples_per_clip: 8,
           augment: true, kinds: null}
    teacher_cache: null            # a distill.teacher.extract cache dir; needed by feature / global terms
    model: {student: vit-ti, probe: cpu, verifier: {}, teacher_dim: 0, image_size: [224, 224]}
    losses: {probe: 1, verifier: 1, cross_view: 0.1, feature: 0, global_align: 0, probe_scale_norm: none}
    trainer: {max_steps: 20000, batch_size: 4, lr: 3.0e-4, ...}   # distill.training.TrainerConfig fields
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from distill import config as configlib
from distill.data.augment import PhotometricAugment
from distill.data.sources import open_clips
from distill.recipe import DistillModel, DistillObjective, LossWeights, ModelConfig
from distill.training.trainer import Trainer, TrainerConfig


@dataclasses.dataclass
class DataConfig:
    root: str = "data/libero_sim"
    split: str = "train"
    num_frames: int = 4
    min_gap: int = 5
    samples_per_clip: int = 8
    augment: bool = True
    kinds: list[str] | None = None


@dataclasses.dataclass
class DistillConfig:
    name: str
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    losses: LossWeights = dataclasses.field(default_factory=LossWeights)
    trainer: dict[str, Any] = dataclasses.field(default_factory=dict)  # TrainerConfig fields but run_dir, checked
    teacher_cache: str | None = None

    def __post_init__(self) -> None:
        self.trainer = configlib.check_fields(TrainerConfig, self.trainer, "trainer", exclude=("run_dir",))

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: tuple[str, ...] | list[str] = ()) -> DistillConfig:
        """The config of a YAML file (``base:`` files allowed), then ``KEY=VALUE`` overrides; bad keys are a ConfigError."""
        return configlib.load_config(cls, path, overrides)

    def to_dict(self) -> dict[str, Any]:
        return configlib.to_dict(self)


class WithTeacherTargets(Dataset):
    """Adds ``teacher [S, C, h, w]`` (cached WAN features of the sample's frames) to each sample."""

    def __init__(self, base: Dataset, cache_root: str) -> None:
        from distill.teacher.cache import FeatureCache

        self.base = base
        self.cache = FeatureCache(cache_root)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, idx: int) -> dict:
        sample = self.base[idx]
        frames = [int(f) for f in sample["frame_ids"]]
        sample["teacher"] = self.cache.features_per_frame(sample["clip_id"], frames).float()
        return sample


def collate(samples: list[dict]) -> dict:
    """Stack tensors; keep strings as lists."""
    out: dict[str, Any] = {}
    for k in samples[0]:
        vals = [s[k] for s in samples]
        out[k] = torch.stack([torch.as_tensor(v) for v in vals]) if not isinstance(vals[0], str) else vals
    return out


def build_dataset(cfg: DistillConfig) -> Dataset:
    d = cfg.data
    data: Dataset = open_clips(d.root, split=d.split, num_frames=d.num_frames, min_gap=d.min_gap,  # d.root: a data spec
                               samples_per_clip=d.samples_per_clip, kinds=tuple(d.kinds) if d.kinds else None,
                               augment=PhotometricAugment() if d.augment else None)
    first = data[0]
    if tuple(first["images"].shape[-2:]) != tuple(cfg.model.image_size):
        raise ValueError(f"{d.root} holds {tuple(first['images'].shape[-2:])} images but model.image_size is "
                         f"{tuple(cfg.model.image_size)}")
    if cfg.teacher_cache:
        data = WithTeacherTargets(data, cfg.teacher_cache)
    elif cfg.losses.feature > 0 or cfg.losses.global_align > 0:
        raise ValueError("losses.feature / losses.global_align need teacher_cache (run distill.teacher.extract first)")
    return data


def save_depth_picture(model: torch.nn.Module, batch: dict, step: int, out_dir: str) -> None:
    """Write ``images/step_XXXXXXX.png``: RGB, GT depth and predicted depth of the batch's first clip."""
    import cv2

    os.makedirs(out_dir, exist_ok=True)
    pred = model(batch["images"][:1])["depth"][0].float().cpu().numpy()  # [S, H, W]
    gt = batch["depth"][0].float().cpu().numpy()
    rgb = (batch["images"][0].permute(0, 2, 3, 1).float().cpu().numpy() * 255).astype(np.uint8)
    rows = []
    for s in range(gt.shape[0]):
        hi = max(float(np.percentile(gt[s][gt[s] > 0], 99)) if np.any(gt[s] > 0) else 1.0, 1e-6)
        colour = [cv2.applyColorMap(np.clip(d / hi * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_TURBO)[..., ::-1]
                  for d in (gt[s], pred[s] * (np.median(gt[s][gt[s] > 0]) / max(np.median(pred[s]), 1e-6) if np.any(gt[s] > 0) else 1.0))]
        rows.append(np.concatenate([rgb[s], *colour], axis=1))
    cv2.imwrite(os.path.join(out_dir, f"step_{step:07d}.png"), np.concatenate(rows, axis=0)[..., ::-1])


@configlib.exit_on_config_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    configlib.add_config_args(parser)
    parser.add_argument("--run-dir", default=None, help="default: runs/<name>")
    parser.add_argument("--max-steps", type=int, default=None, help="override trainer.max_steps")
    args = parser.parse_args(argv)

    if configlib.read_yaml(args.config).get("recipe") == "frame":  # the per-frame student (v2)
        from distill import frame_recipe

        fcfg = frame_recipe.FrameDistillConfig.from_yaml(args.config, args.overrides)
        frame_recipe.train(fcfg, args.run_dir or os.path.join("runs", fcfg.name), args.config,
                           {"max_steps": args.max_steps} if args.max_steps is not None else None)
        return
    cfg = DistillConfig.from_yaml(args.config, args.overrides)
    run_dir = args.run_dir or os.path.join("runs", cfg.name)
    trainer_fields = {**cfg.trainer, "run_dir": run_dir}
    if args.max_steps is not None:
        trainer_fields["max_steps"] = args.max_steps
    trainer_fields.setdefault("images_per_sample", cfg.data.num_frames)
    configlib.check_run_path(trainer_fields.get("init_from"), "trainer.init_from", args.config, DistillConfig)
    configlib.existing_path(cfg.data.root, "data.root", args.config,
                            hint=f"render it first: python -m distill.data.render --config config/data/NAME.yaml --out {cfg.data.root}")
    if cfg.teacher_cache:
        configlib.existing_path(cfg.teacher_cache, "teacher_cache", args.config,
                                hint=f"extract it first: python -m distill.teacher.extract ... --out {cfg.teacher_cache}")
    os.makedirs(run_dir, exist_ok=True)
    used = {k: v for k, v in trainer_fields.items() if k != "run_dir"}  # what this run uses, overrides included
    configlib.dump(cfg, os.path.join(run_dir, "config.yaml"), extra={"trainer": used, "run_dir": run_dir})
    tcfg = TrainerConfig(**trainer_fields)

    torch.manual_seed(tcfg.seed)  # identical initial weights on every rank and every restart
    model = DistillModel(cfg.model, cfg.losses)
    trainer = Trainer(tcfg, model, DistillObjective(cfg.losses), build_dataset(cfg), collate_fn=collate,
                      visualize=save_depth_picture)
    last = trainer.fit()
    if trainer.dist.is_main:
        print(f"[train] {cfg.name}: finished at step {trainer.step}; last losses "
              + ", ".join(f"{k}={v:.4g}" for k, v in last.items()))


if __name__ == "__main__":
    main()
