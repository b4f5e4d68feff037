"""Training curves as a picture: ``python -m distill.training.curves RUN_DIR [--out PNG]``.

Reads the trainer's ``metrics.jsonl`` (one JSON object per logged step) and draws every scalar
loss term against the step, raw and smoothed (an exponential moving average), one panel per
term, plus the learning rate. The trainer writes ``RUN_DIR/curves.png`` itself when a run ends.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

SKIP = {"step", "images_per_s"}


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of ``metrics.jsonl`` in step order (a row logged twice keeps its last value)."""
    rows: dict[int, dict[str, float]] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            rows[int(row["step"])] = row
    return [rows[s] for s in sorted(rows)]


def ema(values: list[float], alpha: float) -> list[float]:
    """Exponential moving average with bias correction (as TensorBoard's smoothing); NaNs are skipped."""
    out, avg, weight = [], 0.0, 0.0
    for v in values:
        if math.isfinite(v):
            avg = alpha * avg + (1 - alpha) * v
            weight = alpha * weight + (1 - alpha)
        out.append(avg / weight if weight else float("nan"))
    return out


def plot_curves(metrics_path: str | os.PathLike, out_png: str | os.PathLike, smoothing: float = 0.9,
                title: str | None = None) -> list[str]:
    """Write the curves PNG; returns the plotted keys. Raises FileNotFoundError / ValueError on no data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_path)
    if not rows:
        raise ValueError(f"{metrics_path}: no logged steps")
    keys = [k for k in rows[-1] if k not in SKIP and isinstance(rows[-1][k], (int, float))]
    steps = [r["step"] for r in rows]
    cols = min(4, len(keys))
    nrows = math.ceil(len(keys) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4 * cols, 2.8 * nrows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        values = [float(r.get(key, float("nan"))) for r in rows]
        ax.plot(steps, values, color="0.75", linewidth=0.8)
        if key != "lr":
            ax.plot(steps, ema(values, smoothing), color="C0", linewidth=1.5)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        if key not in ("lr",) and all(v > 0 for v in values if math.isfinite(v)):
            ax.set_yscale("log")
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.suptitle(title or str(Path(metrics_path).parent.name), fontsize=10)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return keys


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m distill.training.curves", description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="default: RUN_DIR/curves.png")
    ap.add_argument("--smoothing", type=float, default=0.9)
    args = ap.parse_args(argv)
    out = args.out or args.run_dir / "curves.png"
    keys = plot_curves(args.run_dir / "metrics.jsonl", out, args.smoothing)
    print(f"{out}: {', '.join(keys)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
