"""The training loop shared by the distillation and policy trainers.

One loop, driven by a config dataclass: AdamW with linear warm-up and cosine decay, gradient
clipping, bf16 autocast on CUDA (on CPU if asked), DDP when launched by torchrun (gloo on CPU), a tqdm bar with
images/s, scalars to TensorBoard and to ``RUN/metrics.jsonl``, periodic pictures through a
hook, and atomic checkpoints every N steps. A run restarted with the same config resumes from
its newest checkpoint and logs the same losses an uninterrupted run would (the batch order is a
function of the step, and the RNG states are part of the checkpoint).
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from distill.nets.widen import widen_into
from distill.training import checkpoint as ckpt
from distill.training.distributed import DistInfo, barrier, init_distributed, mean_across_ranks, shutdown_distributed
from distill.training.sampler import StepBatchSampler

log = logging.getLogger(__name__)

Objective = Callable[[nn.Module, Any, int], tuple[torch.Tensor, dict[str, float]]]
"""``objective(model, batch, step) -> (loss, scalars)``: the scalars are logged as they are."""

Visualizer = Callable[[nn.Module, Any, int, str], None]
"""``visualize(model, batch, step, out_dir)``: writes pictures (rank 0 only, under no_grad)."""


@dataclass
class TrainerConfig:
    """Every knob of the loop. Units: steps are optimiser steps; lr is the peak learning rate."""

    run_dir: str
    max_steps: int = 1000
    batch_size: int = 4  # per process
    lr: float = 1e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.01  # cosine floor as a fraction of lr
    grad_clip: float = 1.0  # max global grad norm; <= 0 disables
    checkpoint_every: int = 200
    keep_checkpoints: int = 3
    log_every: int = 10
    image_every: int = 0  # 0 disables the visualiser
    images_per_sample: int = 1  # e.g. S frames per clip, for the images/s readout
    seed: int = 0
    init_from: str | None = None  # a checkpoint dir or run dir: its model weights start a fresh run
    init_widen: bool = False  # init_from a narrower net of the same structure (distill.nets.widen)
    num_workers: int = 0
    device: str = "auto"  # auto | cpu | cuda
    bf16: bool = True  # autocast to bf16 on CUDA; on CPU only with bf16_cpu
    bf16_cpu: bool = False  # autocast to bf16 on CPU too (measure first: bench/bench_train_throughput.py --bf16)
    tensorboard: bool = True
    progress: bool = True


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Learning-rate multiplier: linear 0 -> 1 over ``warmup`` steps, then cosine to ``min_ratio``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class Trainer:
    """Runs ``objective`` over ``dataset`` for ``cfg.max_steps`` steps, resuming if it can."""

    def __init__(self, cfg: TrainerConfig, model: nn.Module, objective: Objective, dataset: Dataset,
                 collate_fn: Callable | None = None, visualize: Visualizer | None = None,
                 param_groups: list[dict] | None = None) -> None:
        self.cfg = cfg
        self.dist: DistInfo = init_distributed(cfg.device)
        self.model = model.to(self.dist.device)
        self.objective = objective
        self.dataset = dataset
        self.collate_fn = collate_fn
        self.visualize = visualize
        params = param_groups if param_groups is not None else [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: warmup_cosine(s, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio)
        )
        self.step = 0
        self.ddp_model: nn.Module = (
            DistributedDataParallel(self.model, device_ids=[self.dist.local_rank] if self.dist.device.type == "cuda" else None)
            if self.dist.world_size > 1 else self.model
        )

    # ------------------------------------------------------------------ helpers

    @property
    def _autocast(self):
        enabled = self.cfg.bf16 and (self.dist.device.type == "cuda" or self.cfg.bf16_cpu)
        return torch.autocast(device_type=self.dist.device.type, dtype=torch.bfloat16, enabled=enabled)

    def _to_device(self, batch: Any) -> Any:
        if isinstance(batch, torch.Tensor):
            return batch.to(self.dist.device, non_blocking=True)
        if isinstance(batch, dict):
            return {k: self._to_device(v) for k, v in batch.items()}
        if isinstance(batch, (list, tuple)):
            return type(batch)(self._to_device(v) for v in batch)
        return batch

    def resume(self) -> ckpt.Checkpoint | None:
        """Load the newest checkpoint of ``run_dir`` (model, optimiser, scheduler) if there is one.

        The RNG state is returned inside the checkpoint and restored by :meth:`fit` only after
        the data loader's iterator exists, because creating that iterator draws from the torch
        RNG; restoring before it would shift every later random draw.
        """
        path = ckpt.latest_checkpoint(self.cfg.run_dir)
        if path is None:
            if self.cfg.init_from:
                self._init_weights(self.cfg.init_from)
            return None
        loaded = ckpt.load_checkpoint(path, self.model, self.optimizer, self.scheduler, restore_rng=False)
        self.step = loaded.step
        if self.dist.is_main:
            _truncate_metrics(os.path.join(self.cfg.run_dir, "metrics.jsonl"), loaded.step)
            tqdm.write(f"[train] resumed from {path} at step {loaded.step}")
        return loaded

    def _init_weights(self, source: str) -> None:
        """Start a fresh run from the model weights of ``source`` (a checkpoint dir, or a run dir's
        newest checkpoint); the optimiser, schedule, step and RNG start anew. Only used when
        ``run_dir`` has no checkpoint of its own: a restarted run resumes from its own."""
        path = ckpt.resolve_checkpoint(source)
        if self.cfg.init_widen:
            try:
                report = widen_into(ckpt.read_model_weights(path), self.model)
            except ValueError as e:
                raise ckpt.CheckpointError(f"{path}: {e}") from e
            how = f"widened ({report.summary()})"
        else:
            ckpt.load_model_weights(path, self.model)
            how = "loaded"
        if self.dist.is_main:
            tqdm.write(f"[train] initialised weights from {path}: {how}")

    def _save(self) -> None:
        if self.dist.is_main:
            ckpt.save_checkpoint(self.cfg.run_dir, self.step, self.model, self.optimizer, self.scheduler,
                                 extra={"config": _jsonable(asdict(self.cfg))}, keep_last=self.cfg.keep_checkpoints)
        barrier(self.dist)

    # ------------------------------------------------------------------ the loop

    def fit(self) -> dict[str, float]:
        """Train to ``max_steps``; returns the last logged scalars."""
        cfg = self.cfg
        os.makedirs(cfg.run_dir, exist_ok=True)
        torch.manual_seed(cfg.seed + self.dist.rank)
        loaded = self.resume()
        start = self.step
        sampler = StepBatchSampler(len(self.dataset), cfg.batch_size, cfg.max_steps, cfg.seed, start,
                                   self.dist.rank, self.dist.world_size)
        loader = iter(DataLoader(self.dataset, batch_sampler=sampler, num_workers=cfg.num_workers,
                                 collate_fn=self.collate_fn, pin_memory=self.dist.device.type == "cuda"))
        if loaded is not None:
            if self.dist.world_size == 1:
                ckpt.restore_rng_state(loaded.rng)
            else:  # the checkpoint holds rank 0's RNG; give every rank its own deterministic stream
                torch.manual_seed(cfg.seed + 1000 * start + self.dist.rank)
        writer = None
        if cfg.tensorboard and self.dist.is_main:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(os.path.join(cfg.run_dir, "tensorboard"))
        metrics_path = os.path.join(cfg.run_dir, "metrics.jsonl")
        bar = tqdm(total=cfg.max_steps, initial=start, disable=not (cfg.progress and self.dist.is_main),
                   unit="step", dynamic_ncols=True)
        last: dict[str, float] = {}
        window_start, window_samples = time.perf_counter(), 0
        self.ddp_model.train()
        try:
            for batch in loader:
                batch = self._to_device(batch)
                with self._autocast:
                    loss, scalars = self.objective(self.ddp_model, batch, self.step)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite loss {loss.item()} at step {self.step}: {scalars}")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = (torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
                             if cfg.grad_clip > 0 else torch.tensor(float("nan")))
                self.optimizer.step()
                self.scheduler.step()
                self.step += 1
                window_samples += cfg.batch_size * self.dist.world_size
                bar.update(1)

                if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                    elapsed = time.perf_counter() - window_start
                    logs = {"loss": float(loss.detach()), **{k: float(v) for k, v in scalars.items()}}
                    logs = mean_across_ranks(logs, self.dist)
                    logs["grad_norm"] = float(grad_norm)
                    logs["lr"] = self.scheduler.get_last_lr()[0]
                    logs["images_per_s"] = window_samples * cfg.images_per_sample / max(elapsed, 1e-9)
                    window_start, window_samples = time.perf_counter(), 0
                    last = logs
                    if self.dist.is_main:
                        bar.set_postfix(loss=f"{logs['loss']:.4f}", img_s=f"{logs['images_per_s']:.1f}")
                        with open(metrics_path, "a") as f:
                            f.write(json.dumps({"step": self.step, **logs}) + "\n")
                        if writer is not None:
                            for k, v in logs.items():
                                writer.add_scalar(f"train/{k}", v, self.step)
                if cfg.image_every and self.visualize and self.step % cfg.image_every == 0 and self.dist.is_main:
                    self.model.eval()
                    with torch.no_grad():
                        self.visualize(self.model, batch, self.step, os.path.join(cfg.run_dir, "images"))
                    self.model.train()
                if self.step % cfg.checkpoint_every == 0 or self.step == cfg.max_steps:
                    self._save()
            barrier(self.dist)  # every rank done before the group is torn down (a rank leaving early can abort gloo's threads)
        finally:
            bar.close()
            if writer is not None:
                writer.close()
            if self.ddp_model is not self.model:
                # DDP's reducer holds the process group; freed only at interpreter exit, gloo's
                # worker threads are destroyed while joinable and the rank aborts (SIGABRT).
                self.ddp_model = self.model
                gc.collect()
            shutdown_distributed(self.dist)
        if self.dist.is_main and os.path.exists(metrics_path):
            _write_curves(metrics_path, os.path.join(cfg.run_dir, "curves.png"))
        return last


def _write_curves(metrics_path: str, out_png: str) -> None:
    """The run's curves as a PNG (skipped with a log line where matplotlib is missing)."""
    try:
        from distill.training.curves import plot_curves

        plot_curves(metrics_path, out_png)
    except ImportError as e:
        log.info("no curves.png: %s", e)


def _truncate_metrics(path: str, step: int) -> None:
    """Drop log lines past ``step`` (written after the checkpoint a resumed run starts from)."""
    if not os.path.exists(path):
        return
    kept = [line for line in open(path) if line.strip() and json.loads(line)["step"] <= step]
    ckpt.atomic_write_text(path, "".join(kept))


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))
