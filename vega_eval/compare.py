"""Paired comparison of LIBERO evaluation runs (pure Python).

Two policies evaluated with the same protocol (suite, seed, init states, step limit) meet the same
episodes, so their outcomes pair up episode by episode. The paired test is McNemar's, exact: under
"no difference" each discordant episode (solved by one policy only) is a fair coin.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

from vega_eval.evaluate import JOURNAL, journal_header
from vega_eval.protocol import FIXTURES_UNIT_ORDER, EpisodeResult, EvalProtocol, wilson_interval
from vega_eval.records import archived_journal, split_archive_path

EpisodeKey = tuple[int, int]
"""``(task_id, episode)``: episode k of task t is the same episode in every run of one protocol."""


@dataclass
class EvalRun:
    """The finished episodes of one evaluation run and the protocol fields that define them."""

    name: str
    protocol: dict  # every field that changes an episode (seed, settle steps, init-state offset, step limit...)
    episodes: dict[EpisodeKey, EpisodeResult]
    task_names: dict[int, str] | None = None  # from a results.json; a journal has none


def _legacy_fixtures(protocol: dict) -> dict:
    """A run recorded before ``EvalProtocol.fixtures`` existed placed fixtures by unit order: say so,
    so that it pairs with runs of its time and never with a run of seeded fixtures."""
    return {**protocol, "fixtures": protocol.get("fixtures", FIXTURES_UNIT_ORDER)}


def load_run(path: str, name: str | None = None) -> EvalRun:
    """Read one evaluation run from any record of it:

    - an eval output folder (its journal);
    - a journal (``episodes.jsonl``) or a ``results.json`` written by ``libero-eval``;
    - an archive of journals (``<study>.jsonl.gz#<run>``, or ``<study>.jsonl.gz`` holding one run);
    - a kept summary (``<run>.json``, :mod:`vega_eval.records`): its episodes come from the archive
      it names, beside it, and must add up to the summary's counts.

    Raises ValueError for a file that is none of these, and FileNotFoundError for a missing one.
    """
    label = name or path
    if os.path.isdir(path):  # an eval output folder: its journal
        path = os.path.join(path, JOURNAL)
    archived = split_archive_path(path)
    if archived is not None:
        run, lines = archived_journal(*archived)
        return _run_from_journal(lines, name or run, path)
    with open(path) as f:
        text = f.read()
    try:
        if not path.endswith(".json"):
            return _run_from_journal([json.loads(line) for line in text.splitlines() if line.strip()], label, path)
        payload = json.loads(text)
        protocol = journal_header(EvalProtocol(**_legacy_fixtures(payload["protocol"])), "")["protocol"]
        task_names = {int(r["task_id"]): r["task"] for r in payload.get("per_task", [])}
        if "episodes" not in payload and "journal" in payload:
            archive = os.path.join(os.path.dirname(path), payload["journal"])
            run = _run_from_journal(archived_journal(archive, payload["run"])[1], label, f"{archive}#{payload['run']}")
            _check_summary(run, protocol, payload["mean"], path)
            run.task_names = task_names
            return run
        results = [EpisodeResult(**row) for row in payload["episodes"]]
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} is not a libero-eval journal or results.json: {e}") from e
    return EvalRun(name=label, protocol=protocol, episodes={(r.task_id, r.episode): r for r in results}, task_names=task_names)


POOL_SEPARATOR = "+"
"""``A+B+C`` names the pooled episodes of runs A, B, C (e.g. one policy on several suites)."""


def pool_runs(parts: list[EvalRun], name: str) -> EvalRun:
    """One run holding the episodes of ``parts`` (each of its own protocol, e.g. another suite), their
    tasks numbered on: part i's task t is task ``offset_i + t``, ``offset_i`` the task count before it.
    Pooled runs pair when their parts ran the same protocols in the same order."""
    episodes: dict[EpisodeKey, EpisodeResult] = {}
    names: dict[int, str] = {}
    offset = 0
    for part in parts:
        suite = part.protocol.get("suite", part.name)
        tasks = sorted({t for t, _ in part.episodes} | set(part.task_names or {}))
        for (t, k), r in part.episodes.items():
            episodes[(offset + t, k)] = r
        for t in tasks:
            names[offset + t] = f"{suite} {t}" + (f": {part.task_names[t]}" if part.task_names and t in part.task_names else "")
        offset += (max(tasks) + 1) if tasks else 0
    return EvalRun(name=name, protocol={"pooled": [p.protocol for p in parts]}, episodes=episodes, task_names=names)


def load_pooled(spec: str, name: str | None = None) -> EvalRun:
    """:func:`load_run` of every path of ``A+B+...`` (a path that exists as given is one run), pooled."""
    if os.path.exists(spec) or POOL_SEPARATOR not in spec:
        return load_run(spec, name)
    return pool_runs([load_run(p) for p in spec.split(POOL_SEPARATOR)], name or spec)


def _run_from_journal(lines: list[dict], label: str, path: str) -> EvalRun:
    """An :class:`EvalRun` from journal lines (header first); ValueError naming ``path`` if they are not one."""
    if not lines or "header" not in lines[0]:
        raise ValueError(f"{path} is not a libero-eval journal: its first line is not a journal header")
    try:
        protocol = _legacy_fixtures(lines[0]["header"]["protocol"])
        results = [EpisodeResult(**row) for row in lines[1:]]
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path} is not a libero-eval journal: {e!r}") from e
    return EvalRun(name=label, protocol=protocol, episodes={(r.task_id, r.episode): r for r in results})


def _check_summary(run: EvalRun, protocol: dict, mean: dict, path: str) -> None:
    """The archived episodes of a kept summary are the ones it counts (same protocol, episodes, successes)."""
    successes = sum(r.success for r in run.episodes.values())
    if run.protocol != protocol or (len(run.episodes), successes) != (mean["episodes"], mean["successes"]):
        raise ValueError(f"{path} does not match its archived journal: {mean['successes']}/{mean['episodes']} under "
                         f"{protocol}, the journal {successes}/{len(run.episodes)} under {run.protocol}")


def binomial_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2)."""
    if k <= 0:
        return 1.0
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2.0**n


def mcnemar_exact(only_a: int, only_b: int) -> tuple[float, float]:
    """Exact McNemar test from the discordant counts.

    Returns ``(p_a_better, p_two_sided)``: the one-sided p-value of "A solves more" and the
    two-sided p-value (twice the smaller tail, at most 1). No discordant pair gives (1, 1).
    """
    n = only_a + only_b
    if n == 0:
        return 1.0, 1.0
    p_a = binomial_tail(only_a, n)
    p_two = min(1.0, 2.0 * min(p_a, binomial_tail(only_b, n)))
    return p_a, p_two


@dataclass(frozen=True)
class PairedOutcome:
    """A against B on the episodes both ran."""

    episodes: int
    both: int
    only_a: int
    only_b: int
    neither: int

    @property
    def p_a_better(self) -> float:
        return mcnemar_exact(self.only_a, self.only_b)[0]

    @property
    def p_two_sided(self) -> float:
        return mcnemar_exact(self.only_a, self.only_b)[1]


def common_episodes(runs: list[EvalRun]) -> list[EpisodeKey]:
    """The episodes every run finished, sorted; ValueError if the runs' protocols differ."""
    for run in runs[1:]:
        if run.protocol != runs[0].protocol:
            raise ValueError(f"{run.name} and {runs[0].name} ran different protocols "
                             f"({run.protocol} against {runs[0].protocol}): their episodes do not pair")
    keys = set(runs[0].episodes)
    for run in runs[1:]:
        keys &= set(run.episodes)
    return sorted(keys)


def paired_outcome(a: EvalRun, b: EvalRun, keys: list[EpisodeKey]) -> PairedOutcome:
    """Count agreements and disagreements of two runs over ``keys``."""
    sa = [a.episodes[k].success for k in keys]
    sb = [b.episodes[k].success for k in keys]
    return PairedOutcome(episodes=len(keys),
                         both=sum(x and y for x, y in zip(sa, sb)),
                         only_a=sum(x and not y for x, y in zip(sa, sb)),
                         only_b=sum(y and not x for x, y in zip(sa, sb)),
                         neither=sum(not x and not y for x, y in zip(sa, sb)))


def per_task_successes(runs: list[EvalRun], keys: list[EpisodeKey]) -> dict[int, list[tuple[int, int]]]:
    """``{task_id: [(successes, episodes) of each run]}`` over ``keys`` (``common_episodes``), tasks in order."""
    out: dict[int, list[tuple[int, int]]] = {}
    for t in sorted({t for t, _ in keys}):
        tk = [k for k in keys if k[0] == t]
        out[t] = [(sum(r.episodes[k].success for k in tk), len(tk)) for r in runs]
    return out


def comparison_markdown(runs: list[EvalRun], reference: int = 0) -> str:
    """Per-task successes of every run on their common episodes, and each run paired with ``runs[reference]``.

    Task names come from the first run that has them (a ``results.json``).
    """
    keys = common_episodes(runs)
    if not keys:
        raise ValueError("the runs have no finished episode in common")
    names = [f"`{r.name}`" for r in runs]
    task_names = next((r.task_names for r in runs if r.task_names), {})
    lines = [f"{len(keys)} common episodes; protocol: " + ", ".join(f"{k} {v}" for k, v in runs[0].protocol.items()), "",
             "| task | " + " | ".join(names) + " |", "|---" * (len(runs) + 1) + "|"]
    for t, counts in per_task_successes(runs, keys).items():
        label = f"{t}: {task_names[t]}" if t in task_names else str(t)
        lines.append(f"| {label} | " + " | ".join(f"{k}/{n}" for k, n in counts) + " |")
    cells = []
    for r in runs:
        k = sum(r.episodes[key].success for key in keys)
        lo, hi = wilson_interval(k, len(keys))
        cells.append(f"**{k}/{len(keys)} ({100 * k / len(keys):.1f} %)**, {100 * lo:.1f}–{100 * hi:.1f} %")
    lines += ["| **all** (95 % interval) | " + " | ".join(cells) + " |", "",
              f"Paired with `{runs[reference].name}` (exact McNemar):", "",
              "| run | both | only reference | only run | neither | p (reference better) | p (two-sided) |",
              "|---|---|---|---|---|---|---|"]
    for i, r in enumerate(runs):
        if i == reference:
            continue
        o = paired_outcome(runs[reference], r, keys)
        lines.append(f"| `{r.name}` | {o.both} | {o.only_a} | {o.only_b} | {o.neither} | {o.p_a_better:.3g} | {o.p_two_sided:.3g} |")
    return "\n".join(lines) + "\n"
