"""Peer process for tests/test_training.py: a tiny regression run through distill.training.Trainer.

Usage: python train_tiny.py RUN_DIR MAX_STEPS [--kill-at-step N] [--batch-size B] [--deterministic]
With --kill-at-step the process sends itself SIGKILL inside step N (after its forward pass),
the way an out-of-memory killer or a preempted job would end it. --deterministic removes the
dropout and input noise, so a DDP run and a single-process run with the same global batch agree.
"""

import argparse
import os
import signal

import torch
from torch import nn
from torch.utils.data import TensorDataset

from distill.training.trainer import Trainer, TrainerConfig


def build(dropout: float = 0.2) -> tuple[nn.Module, TensorDataset]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(37, 8, generator=g)
    y = x @ torch.randn(8, 2, generator=g) + 0.1 * torch.randn(37, 2, generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Dropout(dropout), nn.Linear(32, 2))
    return model, TensorDataset(x, y)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("max_steps", type=int)
    parser.add_argument("--kill-at-step", type=int, default=-1)
    parser.add_argument("--batch-size", type=int, default=5)
    parser.add_argument("--deterministic", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, data = build(0.0 if args.deterministic else 0.2)
    noise = 0.0 if args.deterministic else 0.01

    def objective(m: nn.Module, batch, step: int):
        x, y = batch
        loss = nn.functional.mse_loss(m(x + noise * torch.randn_like(x)), y)  # noise: exercises the RNG
        if step == args.kill_at_step:
            os.kill(os.getpid(), signal.SIGKILL)
        return loss, {"mse": float(loss.detach())}

    cfg = TrainerConfig(run_dir=args.run_dir, max_steps=args.max_steps, batch_size=args.batch_size, lr=3e-3, warmup_steps=3,
                        checkpoint_every=4, log_every=1, tensorboard=False, progress=False, device="cpu")
    Trainer(cfg, model, objective, data).fit()


if __name__ == "__main__":
    main()
