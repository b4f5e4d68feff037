"""What a probe run leaves behind: ``results.json``, the markdown tables, ``predictions.png``, and
the probe table recorded in a student artifact's card."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from distill.metrics import paired_comparison
from vega_ros import geometry as geo


def _fmt(x, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def markdown_table(results: list[dict]) -> str:
    """The papers' table: one row per encoder, then the ORB baseline rows (pose only)."""
    lines = [
        "| Encoder | Point Err ↓ (×10) | Depth AbsRel ↓ | δ<1.25 ↑ | AUC@30 ↑ | AUC@15 ↑ | AUC@5 ↑ |",
        "|---|---|---|---|---|---|---|",
    ]
    orb_rows = {}
    for r in results:
        t = r["test"]
        lines.append(f"| {r['encoder']} | {_fmt(t['point_err_x10'])} | {_fmt(t['depth_abs_rel'])} | "
                     f"{_fmt(t['depth_delta1'])} | {_fmt(t['auc@30'])} | {_fmt(t['auc@15'])} | {_fmt(t['auc@5'])} |")
        if r.get("orb"):
            orb_rows[r["data"]] = r["orb"]
    for o in orb_rows.values():
        lines.append(f"| ORB + essential (RANSAC) | – | – | – | {_fmt(o['auc@30'])} | {_fmt(o['auc@15'])} | {_fmt(o['auc@5'])} |")
    return "\n".join(lines) + "\n"


def save_visualisation(path: Path, cache: dict, preds: list[dict], num: int) -> None:
    """RGB, GT depth, predicted depth (median-scaled), and GT vs predicted clouds (top view) per clip."""
    try:
        import matplotlib
    except ImportError:  # the train extra should bring it; the benchmark's numbers do not need it
        print(f"matplotlib is not installed: {path.name} not written", file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    num = min(num, len(preds))
    if num == 0:
        return
    fig, axes = plt.subplots(num, 4, figsize=(13, 3.2 * num), squeeze=False)
    for row in range(num):
        img = cache["images"][row, 0].permute(1, 2, 0).numpy()
        gt = cache["depth"][row, 0].numpy()
        valid = cache["valid"][row, 0].numpy().astype(bool)
        pd = preds[row]["depth"][0]
        scale = np.median(gt[valid]) / max(np.median(pd[valid]), 1e-9) if valid.any() else 1.0
        vmax = float(gt[valid].max()) if valid.any() else 1.0
        axes[row, 0].imshow(img)
        axes[row, 1].imshow(np.where(valid, gt, np.nan), vmin=0, vmax=vmax, cmap="turbo")
        axes[row, 2].imshow(np.where(valid, pd * scale, np.nan), vmin=0, vmax=vmax, cmap="turbo")
        v_all = cache["valid"][row].numpy().astype(bool)
        g = cache["points_ref"][row].numpy()[v_all]
        p = preds[row]["points"][v_all]
        if len(g):  # a source without depth (DL3DV) has no GT cloud to draw
            g = g / max(np.linalg.norm(g, axis=-1).mean(), 1e-9)
        if np.any(p):
            p = p * geo.scale_alignment(p, g)
        sel = np.random.default_rng(0).choice(len(g), size=min(4000, len(g)), replace=False) if len(g) else []
        axes[row, 3].scatter(g[sel, 0], g[sel, 2], s=0.5, c="tab:blue", label="GT")
        axes[row, 3].scatter(p[sel, 0], p[sel, 2], s=0.5, c="tab:orange", label="pred")
        axes[row, 3].set_aspect("equal")
        axes[row, 3].legend(loc="upper right", markerscale=8, fontsize=7)
        for ax, title in zip(axes[row], ("RGB (ref)", "GT depth", "pred depth (median-scaled)", "clouds x–z (ref cam)")):
            ax.set_title(title, fontsize=9)
            if title != "clouds x–z (ref cam)":
                ax.axis("off")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)


PAIRED_KEYS = (("point_err_x10", "Point Err (×10)", True), ("depth_abs_rel", "Depth AbsRel", True),
               ("depth_delta1", "δ<1.25", False), ("pose_err_deg_median", "pose err (°, clip median)", True))


def interval_verdict(c: dict, lower_is_better: bool) -> str:
    """``ahead`` when the 95 % interval of (run − baseline) excludes zero on the run's better side,
    ``behind`` when it excludes zero on the other side, ``n.s.`` when it holds zero (or is empty)."""
    lo, hi = c["ci_low"], c["ci_high"]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "n.s."
    if (hi < 0) if lower_is_better else (lo > 0):
        return "ahead"
    if (lo > 0) if lower_is_better else (hi < 0):
        return "behind"
    return "n.s."


def paired_table(results: list[dict], baseline: dict) -> str:
    """Each run against ``baseline`` on the same test clips: mean difference [95 % bootstrap CI],
    the share of clips where the run is better, and the interval's verdict (:func:`interval_verdict`:
    ahead / behind / n.s.), per metric (markdown).

    Raises ``ValueError`` when a run has no per-clip values or was scored on other clips.
    """
    def clips_of(r):
        c = r["config"]
        return (r["data"], c["test_split"], c["num_frames"], c["min_gap"], c["seed"], c["test_samples_per_clip"],
                c["max_test_clips"], r["test"].get("clips"))

    def per_clip(r):
        if "per_clip" not in r["test"]:
            raise ValueError(f"{r['encoder']}: results.json has no per-clip values (re-run the probe to rescore)")
        return r["test"]["per_clip"]

    base = per_clip(baseline)
    head = " | ".join(f"Δ {name}" for _, name, _ in PAIRED_KEYS)
    lines = [f"| Encoder vs {baseline['encoder']} | {head} |", "|---" * (len(PAIRED_KEYS) + 1) + "|"]
    for r in results:
        if r is baseline:
            continue
        values = per_clip(r)
        if clips_of(r) != clips_of(baseline):
            raise ValueError(f"{r['encoder']} and {baseline['encoder']} were scored on different test clips")
        cells = []
        for key, _, lower in PAIRED_KEYS:
            c = paired_comparison(values[key], base[key], lower_is_better=lower)
            cells.append(f"{c['mean_diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}], better on "
                         f"{100 * c['better_frac']:.0f} % of {c['n']}: {interval_verdict(c, lower)}")
        lines.append(f"| {r['encoder']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(out: Path, results: dict, cache: dict, preds: list[dict], num_vis: int) -> None:
    """``results.json``, ``results.md`` (the papers' table) and ``predictions.png`` into ``out``."""
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(markdown_table([results]))
    save_visualisation(out / "predictions.png", cache, preds, num_vis)


METRIC_KEYS = ("point_err_x10", "depth_abs_rel", "depth_delta1", "auc@30", "auc@15", "auc@5")


def record_in_card(model_dir: str | Path, results: list[dict]) -> dict:
    """Write a probe table into a student artifact's ``card.json`` (``metrics.probe``).

    ``results[0]`` must be the run of this artifact's own token graph (``encoder.onnx``, or
    ``frame.onnx`` in format version 2): its recorded sha256 has to equal the card's, so a card
    never carries numbers measured on other weights. The other runs (floor, controls) are stored as
    the comparison rows. Returns the ``metrics`` written.
    """
    from distill.encoders import token_graph_of_card
    from vega_ros.artifact import read_card, write_card

    card = read_card(str(model_dir))
    graph = token_graph_of_card(card)
    own = results[0]
    measured = (own.get("encoder_info") or {}).get("sha256")
    if measured != card.files.get(graph):
        raise ValueError(f"{model_dir}: the first run measured encoder sha256 {measured}, "
                         f"the card's {graph} is {card.files.get(graph)}")
    rows = [{"encoder": r["encoder"], **{k: r["test"].get(k) for k in METRIC_KEYS}} for r in results]
    metrics = {k: v for k, v in card.metrics.items() if k != "note"}
    metrics["probe"] = {
        "data": own["data"], "split": own["config"]["test_split"], "command": own.get("command"),
        "config": {k: own["config"][k] for k in ("steps", "batch_size", "lr", "num_frames", "min_gap", "train_samples_per_clip")},
        "rows": rows, "orb": {k: own["orb"].get(k) for k in ("auc@30", "auc@15", "auc@5")} if own.get("orb") else None}
    write_card(str(model_dir), dataclasses.replace(card, metrics=metrics))
    return metrics


