"""What a trained policy reads from each visual stream: the VEGA-3D gate and permutation importance.

    python -m distill.policy.streams --policy models/<policy> --cache data/bc_cache/vega-sim-vit-ti \
        [--frames 2048] [--out docs/policy/<policy>_streams.png]

On frames of the policy's training cache (its demos; ``--episodes`` restricts them), measured
in the policy's own action units:

- ``l1``: masked L1 of the predicted chunks against the demonstrated ones, all inputs intact;
- ``l1 with <stream> shuffled``: the same with that stream's inputs taken from other frames of the
  batch (the 3D tokens of both cameras, or both camera images for the semantic stream), everything
  else intact. The increase over ``l1`` is how much the policy relies on that stream;
- for ``fused`` policies, the gate ``g = sigmoid(Linear([f_sem; f_3d]))`` per camera (mean and
  spread over frames, tokens and channels) and the 3D share of each fused token,
  ``|g f_3d| / (|g f_3d| + |(1 - g) f_sem|)`` (L2 norms per token), with a picture of the mean
  gate over each camera's token grid.

Needs the policy's torch weights (``model.safetensors``, written by every export since session 10).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from distill.nets.policy import Fusion, GatedFusionPolicy, PolicyConfig
from distill.policy.train import ChunkDataset
from distill.training.checkpoint import load_model_weights
from vega_ros.policy_runtime import PolicyCard


def load_policy(policy_dir: str) -> tuple[GatedFusionPolicy, PolicyCard]:
    """The torch model of an exported policy (card + ``model.safetensors``), in eval mode on the CPU."""
    card = PolicyCard.load(policy_dir)
    cfg = card.training.get("policy_config")
    if not cfg:
        raise ValueError(f"{policy_dir}: the card records no policy_config")
    model = GatedFusionPolicy(PolicyConfig(**cfg))
    load_model_weights(policy_dir, model)
    return model.eval(), card


def _masked_l1(pred: torch.Tensor, batch: dict[str, torch.Tensor]) -> tuple[float, float]:
    """Sum of masked per-step L1 and the mask's sum (to average over a whole pass)."""
    err = (pred - batch["actions"]).abs().mean(-1)
    return float((err * batch["mask"]).sum()), float(batch["mask"].sum())


@torch.no_grad()
def stream_report(model: GatedFusionPolicy, dataset: ChunkDataset, frames: int = 2048, batch_size: int = 64,
                  seed: int = 0) -> dict:
    """The measurements of the module docstring on ``frames`` frames drawn evenly from ``dataset``.

    Returns a dict with ``l1``, ``l1_shuffled`` (per stream the model has), and for fused models
    ``gate`` (per camera: mean, std, 5th / 95th percentile) and ``share_3d`` (per camera mean),
    plus ``gate_map`` ``[cameras, grid, grid]`` (not JSON: for the picture).
    """
    cfg = model.cfg
    idx = np.linspace(0, len(dataset) - 1, min(frames, len(dataset))).round().astype(int)
    g = torch.Generator().manual_seed(seed)
    # batches mix episodes, so a frame's shuffled partner comes from elsewhere in the data
    loader = DataLoader(Subset(dataset, idx.tolist()), batch_size=batch_size, shuffle=True, generator=g)
    streams = {Fusion.FUSED: ("3d", "semantic"), Fusion.THREE_D_ONLY: ("3d",), Fusion.SEMANTIC_ONLY: ("semantic",)}[cfg.fusion]
    sums = {k: [0.0, 0.0] for k in ("intact", *streams)}
    gates, shares = [], []
    for batch in loader:
        args = [batch[k] for k in ("agentview", "wrist", "tokens_3d", "proprio", "language")]
        for key in sums:
            a = list(args)
            if key != "intact":
                b = len(batch["actions"])  # a cyclic shift by 1..b-1: no frame keeps its own input
                perm = torch.roll(torch.arange(b), 1 + int(torch.randint(0, max(1, b - 1), (1,), generator=g)))
                if key == "3d":
                    a[2] = a[2][perm]
                else:
                    a[0], a[1] = a[0][perm], a[1][perm]
            s, m = _masked_l1(model(*a), batch)
            sums[key][0] += s
            sums[key][1] += m
        if cfg.fusion == Fusion.FUSED:
            for cam, image in enumerate(args[:2]):
                f_sem, f_3d = model.semantic(image), model.project_3d(args[2][:, cam])
                _, gate = model.gate(f_sem, f_3d)  # [B, grid^2, dim]
                a3d, asem = (gate * f_3d).norm(dim=-1), ((1 - gate) * f_sem).norm(dim=-1)
                gates.append((cam, gate))
                shares.append((cam, a3d / (a3d + asem).clamp_min(1e-12)))
    report: dict = {"frames": int(len(idx)), "l1": sums["intact"][0] / sums["intact"][1],
                    "l1_shuffled": {k: v[0] / v[1] for k, v in sums.items() if k != "intact"}}
    if gates:
        report["gate"], report["share_3d"], maps = {}, {}, []
        for cam, name in enumerate(("agentview", "wrist")):
            gc = torch.cat([x for c, x in gates if c == cam])  # [F, grid^2, dim]
            flat = gc.flatten().numpy()
            report["gate"][name] = {"mean": float(flat.mean()), "std": float(flat.std()),
                                    "p05": float(np.percentile(flat, 5)), "p95": float(np.percentile(flat, 95))}
            report["share_3d"][name] = float(torch.cat([x for c, x in shares if c == cam]).mean())
            maps.append(gc.mean(dim=(0, 2)).reshape(cfg.grid, cfg.grid).numpy())
        report["gate_map"] = np.stack(maps)
    return report


def save_gate_picture(report: dict, path: str, title: str) -> None:
    """Mean gate over each camera's token grid (1 = all 3D, 0 = all semantic), and the L1 bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    maps = report.get("gate_map")
    n = 0 if maps is None else len(maps)
    fig, axes = plt.subplots(1, n + 1, figsize=(3.4 * (n + 1), 3.2))
    axes = np.atleast_1d(axes)
    for cam in range(n):
        im = axes[cam].imshow(maps[cam], vmin=0, vmax=1, cmap="viridis")
        axes[cam].set_title(f"mean gate, {('agentview', 'wrist')[cam]}")
        axes[cam].axis("off")
        fig.colorbar(im, ax=axes[cam], fraction=0.046)
    labels = ["intact"] + [f"{k}\nshuffled" for k in report["l1_shuffled"]]
    values = [report["l1"]] + list(report["l1_shuffled"].values())
    axes[-1].bar(labels, values, color=["tab:gray"] + ["tab:orange"] * (len(values) - 1))
    axes[-1].set_ylabel("action L1")
    axes[-1].set_title("inputs shuffled across frames")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", required=True, help="exported policy folder with model.safetensors")
    parser.add_argument("--cache", required=True, help="the token cache the policy was trained from")
    parser.add_argument("--episodes", type=int, default=None, help="only the first N cached episodes of the card's demos")
    parser.add_argument("--frames", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", default=None, help="picture path (default: <policy>/streams.png); the JSON goes beside it")
    args = parser.parse_args(argv)
    model, card = load_policy(args.policy)
    cfg = model.cfg
    index = json.load(open(os.path.join(args.cache, "index.json")))
    demo_dirs = {os.path.realpath(d) for d in card.training.get("demos", [])}
    keys = [e["key"] for e in index["episodes"] if not demo_dirs or os.path.dirname(os.path.realpath(e["file"])) in demo_dirs]
    if args.episodes:
        keys = keys[:args.episodes]
    dataset = ChunkDataset(args.cache, cfg.chunk, need_tokens=cfg.fusion != Fusion.SEMANTIC_ONLY, episodes=keys,
                           proprio_layout=tuple(card.proprio_layout))
    report = stream_report(model, dataset, args.frames, args.batch_size)
    out = args.out or os.path.join(args.policy, "streams.png")
    save_gate_picture(report, out, f"{card.name} ({cfg.fusion.value}), {report['frames']} training frames")
    payload = {k: v for k, v in report.items() if k != "gate_map"}
    payload["policy"], payload["episodes"] = card.name, len(keys)
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump(payload, f, indent=1)
    print(json.dumps(payload, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
