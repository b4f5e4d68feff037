"""Time WAN DIFT extraction per clip with a random-weight model of a chosen shape.

    python bench/bench_teacher.py                                   # tiny model on CPU (seconds)
    python bench/bench_teacher.py --preset wan2.1-1.3b-shape        # GPU: 1.3B shape, 81 × 480 × 832, bf16
    python bench/bench_teacher.py --preset wan2.1-14b-shape         # GPU: 14B shape up to block 27

Prints medians over --repeats clips for the VAE encode alone (the baseline, measured in the same run) and
for the whole DIFT extraction (VAE + noise + transformer up to the hooked block), and their ratio.
Random weights time the same arithmetic as real ones; the numbers are never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from distill.teacher.loading import cast_keeping_fp32
from distill.teacher.presets import PRESETS, build_modules
from distill.teacher.wan import WanDiftConfig, WanDiftTeacher

DEFAULTS = {  # preset → (frames, (H, W), block)
    "tiny": (17, (32, 48), 2),
    "tiny-i2v": (17, (32, 48), 2),
    "wan2.1-1.3b-shape": (81, (480, 832), 20),
    "wan2.1-14b-shape": (81, (480, 832), 27),  # config/teacher/wan2.1-14b.yaml's block
}


def timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--frames", type=int, help="frames per clip (4k+1)")
    parser.add_argument("--resolution", type=int, nargs=2, metavar=("H", "W"))
    parser.add_argument("--block", type=int)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], help="default: bfloat16 on CUDA, float32 on CPU")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    args = parser.parse_args(argv)

    frames, resolution, block = DEFAULTS[args.preset]
    frames = args.frames or frames
    resolution = tuple(args.resolution or resolution)
    block = args.block if args.block is not None else block
    device = torch.device(args.device)
    dtype = args.dtype or ("bfloat16" if device.type == "cuda" else "float32")
    torch.set_grad_enabled(False)

    start = time.perf_counter()
    transformer, vae, image_encoder = build_modules(args.preset, device=device, num_layers=block + 1)
    cast_keeping_fp32(transformer, getattr(torch, dtype))
    if image_encoder is not None:
        image_encoder.to(getattr(torch, dtype))
    config = WanDiftConfig(checkpoint="(random)", model_id=f"random/{args.preset}", block=block,
                           resolution=resolution, chunk_frames=frames, dtype=dtype, device=str(device))
    teacher = WanDiftTeacher(config, transformer=transformer, vae=vae, image_encoder=image_encoder,
                             image_preprocess={"size": 32, "crop": (32, 32)} if image_encoder is not None else None)
    build_s = time.perf_counter() - start
    params = sum(p.numel() for p in transformer.parameters()) / 1e6
    print(f"preset {args.preset}: {len(transformer.blocks)} blocks loaded ({params:.0f} M params), block {block}, "
          f"{frames} frames at {resolution[0]}×{resolution[1]}, {dtype} on {device} (built in {build_s:.1f} s)")

    clip = torch.rand(1, frames, 3, *resolution)
    pixels = teacher.prepare(clip)
    for _ in range(args.warmup):
        teacher.clip_features(clip)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    vae_s = [timed(lambda: teacher.encode(pixels), device) for _ in range(args.repeats)]
    dift_s = [timed(lambda: teacher.clip_features(clip), device) for _ in range(args.repeats)]
    feats = teacher.clip_features(clip)
    vae_med, dift_med = statistics.median(vae_s), statistics.median(dift_s)
    print(f"features per clip: {tuple(feats.shape[1:])} (latent frames, C, H/16, W/16)")
    print(f"VAE encode (baseline)      median {vae_med * 1e3:9.1f} ms/clip over {args.repeats}")
    print(f"DIFT extraction (VAE + DiT) median {dift_med * 1e3:9.1f} ms/clip   ratio {dift_med / vae_med:.2f}× VAE")
    print(f"                            = {frames / dift_med:.1f} frames/s")
    if device.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
