"""Per-task success of LIBERO evaluation runs as a grouped bar chart (PNG).

The picture of ``comparison_markdown``'s table: for every task of the runs' common episodes, one
bar per run (its success rate) with the 95 % Wilson interval as an error bar, and an "all" group.
Needs matplotlib (the ``sim`` extra); it is imported only here, so ``libero-compare`` without
``--plot`` runs without it.
"""

from __future__ import annotations

from pathlib import Path

from vega_eval.compare import EvalRun, common_episodes, per_task_successes
from vega_eval.protocol import wilson_interval


def success_bars(runs: list[EvalRun]) -> tuple[list[str], list[list[tuple[float, float, float]]]]:
    """The chart's numbers: group labels (task ids, then ``all``) and, per group, one
    ``(rate, low, high)`` in [0, 1] per run (rate and its 95 % Wilson interval)."""
    keys = common_episodes(runs)
    if not keys:
        raise ValueError("the runs have no finished episode in common")
    per_task = per_task_successes(runs, keys)
    totals = [(sum(per_task[t][i][0] for t in per_task), len(keys)) for i in range(len(runs))]
    labels = [str(t) for t in per_task] + ["all"]
    groups = []
    for counts in [*per_task.values(), totals]:
        groups.append([(k / n, *wilson_interval(k, n)) for k, n in counts])
    return labels, groups


def plot_comparison(runs: list[EvalRun], path: str | Path, title: str | None = None) -> Path:
    """Write the grouped bar chart of ``success_bars(runs)`` to ``path`` (PNG); returns the path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the install
        raise RuntimeError("--plot needs matplotlib (pip install -e .[sim])") from e
    labels, groups = success_bars(runs)
    n = len(runs)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(6.0, 0.25 * len(labels) * (n + 1)), 3.6), dpi=120)
    for i, run in enumerate(runs):
        xs = [g + (i - (n - 1) / 2) * width for g in range(len(labels))]
        rates = [groups[g][i][0] for g in range(len(labels))]
        err = [[r - groups[g][i][1] for g, r in enumerate(rates)], [groups[g][i][2] - r for g, r in enumerate(rates)]]
        ax.bar(xs, rates, width, yerr=err, capsize=2, label=run.name, error_kw={"elinewidth": 0.8})
    ax.axvline(len(labels) - 1.5, color="0.6", linewidth=0.8)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("task")
    ax.set_ylabel("success (95 % interval)")
    ax.set_ylim(0, 1.22)  # room for the legend above the bars
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.legend(loc="upper center", fontsize=8, ncols=min(n, 4), frameon=False)
    protocol = runs[0].protocol
    ax.set_title(title or f"{protocol.get('suite', '')}: {len(common_episodes(runs))} common episodes", fontsize=10)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
