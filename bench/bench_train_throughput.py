"""Training throughput, images/s: today's clip recipe (``config/distill/sim-cpu.yaml``) against the
per-frame recipe (``config/distill/student-v2-cpu.yaml``), measured interleaved in one process.

Each variant runs its own objective, backward pass, gradient clipping and AdamW step, with batches
from its own DataLoader (the trainer's settings: batch size, workers). Rounds alternate between the
variants so a neighbour's load on this shared machine hits all of them alike; the table gives the
median images/s over rounds and the ratio to today's recipe.

Data: no rendered dataset is needed. Today's recipe reads analytic clips (``synthetic:N:224x224``)
materialised in memory first, so its number is the model's cost, not the renderer's; the per-frame
recipe reads the same clips' frames from its decoded-frame cache (uint8, memory-mapped), its real
data path, with its random crops, flips and photometric augmentation.

Variants of the per-frame recipe: its training crops (``data.train_size``, 128 x 128) and full
224 x 224 crops; with ``--contiguous`` also without channels-last, with ``--bf16`` also CPU bf16
autocast (a CPU without native bf16 emulates it: measure before using it).

    python bench/bench_train_throughput.py --rounds 3 --threads 2 [--contiguous] [--bf16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from distill import frame_recipe as fr  # noqa: E402
from distill.train import DistillConfig, build_dataset, collate  # noqa: E402


@dataclass
class Variant:
    name: str
    images_per_step: int
    step: Callable[[], None]


def _cycle(loader) -> Iterator:
    while True:
        yield from loader


def _optimiser_step(model, opt, loss) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def clip_recipe(config: str, clips: int) -> Variant:
    """Today's recipe: the ViT student + probe + verifier + cross-view on 4-frame clips."""
    from distill.recipe import DistillModel, DistillObjective

    cfg = DistillConfig.from_yaml(config, [f"data.root=synthetic:{clips}:224x224", "data.samples_per_clip=1"])
    samples = list(build_dataset(cfg))  # in memory: the model's cost only
    batch_size = int(cfg.trainer.get("batch_size", 2))
    loader = _cycle(torch.utils.data.DataLoader(samples, batch_size=batch_size, shuffle=True, collate_fn=collate))
    torch.manual_seed(0)
    model = DistillModel(cfg.model, cfg.losses).train()
    objective = DistillObjective(cfg.losses)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step() -> None:
        loss, _ = objective(model, next(loader), 0)
        _optimiser_step(model, opt, loss)

    return Variant(f"{cfg.name} (today)", batch_size * cfg.data.num_frames, step)


def frame_recipe(config: str, clips: int, cache_dir: str, channels_last: bool, bf16: bool,
                 batch_size: int | None, full_size: bool) -> Variant:
    """The per-frame recipe through its frame cache and DataLoader; ``full_size`` trains on 224 x 224
    crops instead of the config's ``data.train_size``."""
    overrides = [f"data.root=synthetic:{clips}:224x224", f"data.cache={cache_dir}",
                 f"channels_last={str(channels_last).lower()}"] + (["data.train_size=null"] if full_size else [])
    cfg = fr.FrameDistillConfig.from_yaml(config, overrides)
    data = fr.build_frame_dataset(cfg)
    bs = batch_size or int(cfg.trainer.get("batch_size", 16))
    workers = int(cfg.trainer.get("num_workers", 0))
    loader = _cycle(torch.utils.data.DataLoader(data, batch_size=bs, shuffle=True, num_workers=workers,
                                                collate_fn=fr.collate, persistent_workers=workers > 0))
    torch.manual_seed(0)
    model = fr.FrameModel(cfg.model, cfg.losses).train()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    objective = fr.FrameObjective(cfg.losses, channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step() -> None:
        batch = next(loader)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, _ = objective(model, batch, 0)
        _optimiser_step(model, opt, loss)

    h, w = cfg.data.train_size or cfg.model.image_size
    name = (f"{cfg.name} {h}x{w} crops b{bs}" + (" channels-last" if channels_last else " contiguous")
            + (" bf16" if bf16 else " fp32"))
    return Variant(name, bs, step)


def frame_loading(config: str, clips: int, cache_dir: str, batch_size: int | None) -> Variant:
    """The per-frame recipe's data loading alone, in the main process (no worker): the rate one
    core feeds; the training step must be slower than this for the loader never to starve it."""
    cfg = fr.FrameDistillConfig.from_yaml(config, [f"data.root=synthetic:{clips}:224x224", f"data.cache={cache_dir}"])
    bs = batch_size or int(cfg.trainer.get("batch_size", 16))
    loader = _cycle(torch.utils.data.DataLoader(fr.build_frame_dataset(cfg), batch_size=bs, shuffle=True,
                                                collate_fn=fr.collate))

    def step() -> None:
        next(loader)

    h, w = cfg.data.train_size or cfg.model.image_size
    return Variant(f"{cfg.name} {h}x{w} crops: data loading alone, 1 process", bs, step)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old-config", default="config/distill/sim-cpu.yaml")
    p.add_argument("--new-config", default="config/distill/student-v2-cpu.yaml")
    p.add_argument("--clips", type=int, default=16, help="analytic 224 x 224 clips (4 frames each)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--old-steps", type=int, default=2, help="steps of today's recipe per round")
    p.add_argument("--new-steps", type=int, default=4, help="steps of each per-frame variant per round")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--batch-size", type=int, default=None, help="per-frame batch (default: the config's)")
    p.add_argument("--bf16", action="store_true", help="add the CPU bf16 autocast variant")
    p.add_argument("--contiguous", action="store_true", help="add the variant without channels-last")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        cache = os.path.join(tmp, "frames")
        variants = [(clip_recipe(args.old_config, args.clips), args.old_steps)]
        todo = [(True, False, True), (True, False, False)]  # (channels-last, bf16, 224 x 224 crops)
        todo += [(False, False, False)] if args.contiguous else []
        todo += [(True, True, False)] if args.bf16 else []
        for cl, bf, full in todo:
            variants.append((frame_recipe(args.new_config, args.clips, cache, cl, bf, args.batch_size, full),
                             args.new_steps))
        variants.append((frame_loading(args.new_config, args.clips, cache, args.batch_size), args.new_steps))
        for v, _ in variants:  # warm-up: first-call allocations, loader workers
            v.step()
        rates: dict[str, list[float]] = {v.name: [] for v, _ in variants}
        for r in range(args.rounds):
            for v, steps in variants:
                t0 = time.perf_counter()
                for _ in range(steps):
                    v.step()
                rates[v.name].append(steps * v.images_per_step / (time.perf_counter() - t0))
            print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {x[-1]:.1f}" for k, x in rates.items()), flush=True)

    base = statistics.median(rates[variants[0][0].name])
    print(f"\ntraining throughput, torch {torch.__version__}, {args.threads} threads, 224 x 224 frames, "
          f"median of {args.rounds} interleaved rounds\n")
    print("| recipe | images/step | images/s (median) | min..max | vs today |\n|---|---:|---:|---:|---:|")
    for v, _ in variants:
        x = rates[v.name]
        print(f"| {v.name} | {v.images_per_step} | {statistics.median(x):.1f} | {min(x):.1f}..{max(x):.1f} "
              f"| {statistics.median(x) / base:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
