"""Probe training: the probe network, its objective, and the wiring to the shared training loop
(``distill.training.trainer.Trainer``: AdamW, warm-up + cosine, clipping, atomic checkpoints, resume)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.utils.data import Dataset

from distill.losses import ProbeLossConfig, probe_loss
from distill.nets.models import Probe, ProbeConfig
from distill.probe.config import ProbeRunConfig
from distill.probe.features import batch_from_cache
from distill.training.trainer import Trainer, TrainerConfig


def build_probe(run: ProbeRunConfig, manifest: dict) -> Probe:
    """A fresh probe sized for a cache (``manifest``: token ``dim``, ``image_hw``, ``grid``).

    Its initial weights come from ``run.seed`` (the global torch generator is left as it was):
    torch seeds a new process at random, so an unseeded probe started every run, and every row of
    a table, from different weights, a spread the clip bootstrap of ``--versus`` does not see.
    """
    cfg = ProbeConfig.preset(run.preset, **run.probe_overrides)
    cfg.in_dim = manifest["dim"]
    cfg.image_size = tuple(manifest["image_hw"])
    cfg.grid_size = tuple(manifest["grid"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(run.seed)
        return Probe(cfg)


class ProbeObjective:
    """``objective(probe, batch, step) -> (loss, scalars)``: ``distill.losses.probe_loss`` on the
    probe's outputs at the cache's image size; the scalars are the loss terms (``total`` included)."""

    def __init__(self, loss_cfg: ProbeLossConfig, image_hw: tuple[int, int]) -> None:
        self.loss_cfg, self.image_hw = loss_cfg, image_hw

    def __call__(self, model: torch.nn.Module, batch: dict, step: int) -> tuple[torch.Tensor, dict[str, float]]:
        pred = model(batch["tokens"], image_hw=self.image_hw)
        loss, terms = probe_loss(pred, batch, self.loss_cfg)
        return loss, {k: float(v) for k, v in terms.items()}


class CachedSamples(Dataset):
    """The samples of a loaded cache by index; :meth:`collate` builds the probe batch of a step."""

    def __init__(self, cache: dict[str, torch.Tensor]) -> None:
        self.cache = cache

    def __len__(self) -> int:
        return int(self.cache["tokens"].shape[0])

    def __getitem__(self, i: int) -> int:
        return i

    def collate(self, indices: list[int]) -> dict[str, torch.Tensor]:
        return batch_from_cache(self.cache, torch.as_tensor(indices, dtype=torch.long))


def trainer_config(run: ProbeRunConfig, run_dir: Path, log_every: int = 10, progress: bool = True) -> TrainerConfig:
    """The shared loop's settings for a probe run (cosine decays to 0, as the probe papers do)."""
    return TrainerConfig(run_dir=str(run_dir), max_steps=run.steps, batch_size=run.batch_size, lr=run.lr,
                         weight_decay=run.weight_decay, warmup_steps=run.warmup_steps, min_lr_ratio=0.0,
                         grad_clip=run.grad_clip, checkpoint_every=run.ckpt_every, log_every=log_every,
                         images_per_sample=run.num_frames, seed=run.seed, tensorboard=False, progress=progress)


def train_probe(probe: Probe, cache: dict, run: ProbeRunConfig, run_dir: Path, log_every: int = 10,
                progress: bool = True) -> list[dict]:
    """Train ``probe`` on cached tokens for ``run.steps`` steps through the shared loop, resuming
    from ``run_dir``'s newest checkpoint (a resumed run sees the batches an uninterrupted one would).

    Returns the logged scalars, one dict per ``log_every`` steps (``step``, ``loss``, the loss
    terms, ``lr``, ...), read back from ``run_dir/metrics.jsonl``.
    """
    data = CachedSamples(cache)
    objective = ProbeObjective(run.loss_config(), tuple(cache["depth"].shape[-2:]))
    Trainer(trainer_config(run, run_dir, log_every, progress), probe, objective, data, collate_fn=data.collate).fit()
    probe.eval()
    metrics = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()] if metrics.is_file() else []
