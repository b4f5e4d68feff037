"""CPU cost of one probe training step (forward + loss + backward + AdamW) on cached tokens.

    .venv/bin/python bench/bench_probe_step.py [--preset cpu] [--size 224] [--frames 4] [--repeats 5] [--threads N]

Prints the median seconds per step for batch 1 and batch 2 (ViT-Ti-shaped tokens: 14 x 14 x 192 at
224 px), the forward-only median, and the ratios batch2 / batch1 and step / forward, all measured in
this run. Never fails on time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch

from distill.losses import probe_loss
from distill.nets.models import Probe, ProbeConfig


def synthetic_batch(b: int, s: int, size: int, in_dim: int, patch: int = 16) -> dict:
    g = torch.Generator().manual_seed(0)
    n = (size // patch) ** 2
    depth = 1.0 + torch.rand(b, s, size, size, generator=g)
    pts = torch.randn(b, s, size, size, 3, generator=g)
    pts[..., 2] = depth
    T = torch.eye(4).repeat(b, s, 1, 1)
    T[:, :, :3, 3] = 0.1 * torch.randn(b, s, 3, generator=g)
    K = torch.tensor([[size, 0.0, size / 2], [0.0, size, size / 2], [0.0, 0.0, 1.0]]).repeat(b, s, 1, 1)
    return {"tokens": torch.randn(b, s, n, in_dim, generator=g), "depth": depth, "points_ref": pts,
            "valid": torch.ones(b, s, size, size, dtype=torch.bool), "K": K, "T_wc": T}


def median_time(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--in-dim", type=int, default=192)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = ProbeConfig.preset(args.preset, in_dim=args.in_dim, image_size=(args.size, args.size))
    probe = Probe(cfg)
    opt = torch.optim.AdamW(probe.parameters(), lr=1e-4)
    n_params = sum(p.numel() for p in probe.parameters())
    print(f"probe preset={args.preset} dim={cfg.dim} L={cfg.depth} dpt={cfg.dpt_features} params={n_params / 1e6:.2f}M "
          f"| {args.size}x{args.size}, S={args.frames}, tokens {(args.size // 16) ** 2}x{args.in_dim} "
          f"| torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores")
    results = {}
    for b in (1, 2):
        batch = synthetic_batch(b, args.frames, args.size, args.in_dim)

        def step(batch=batch):
            out = probe(batch["tokens"])
            loss, _ = probe_loss(out, batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        def forward(batch=batch):
            with torch.no_grad():
                probe(batch["tokens"])

        results[b] = (median_time(step, args.repeats), median_time(forward, args.repeats))
        print(f"batch {b}: train step median {results[b][0] * 1e3:8.1f} ms   forward (no grad) median {results[b][1] * 1e3:8.1f} ms"
              f"   ({b * args.frames / results[b][0]:.1f} frames/s trained)")
    print(f"ratio batch2/batch1 (step): {results[2][0] / results[1][0]:.2f}   "
          f"ratio step/forward (batch 1): {results[1][0] / results[1][1]:.2f}")


if __name__ == "__main__":
    main()
