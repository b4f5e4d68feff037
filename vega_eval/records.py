"""Evaluation records kept in the tree: one summary JSON per result, one episode archive per study.

A study (several policies, or one policy at several sizes or seeds) keeps the journals of its runs
(``episodes.jsonl``, see :mod:`vega_eval.evaluate`) in one gzip file, ``<study>.jsonl.gz``, each
line tagged with its run::

    {"run": "bc-fused-long_spatial_20", "header": {"policy": ..., "protocol": {...}}}   first line of a run
    {"run": "bc-fused-long_spatial_20", "task_id": 0, "episode": 5, ...}             one line per episode

A run's summary, ``<run>.json`` beside the archive, is its ``results.json`` without the episodes
(protocol, step limit, per-task and mean success with 95 % intervals) plus ``run``, ``policy``
(a readable name), ``policy_id`` (the journal's policy field) and ``journal`` (the archive's file
name). :func:`vega_eval.compare.load_run` reads a run from either: ``<run>.json`` or
``<study>.jsonl.gz#<run>``.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tempfile

from vega_eval.protocol import FIXTURES_UNIT_ORDER

ARCHIVE_SUFFIX = ".jsonl.gz"
RUN_SEPARATOR = "#"
"""``<archive>#<run>`` names one run of an archive."""

Journal = list[dict]
"""A run's journal lines: ``{"header": ...}`` first, then one episode row (EpisodeResult fields) each."""


def write_archive(path: str, journals: dict[str, Journal]) -> None:
    """Write ``{run: journal lines}`` to ``path`` (gzip, runs in the given order), atomically.

    The bytes depend on the journals alone (no time stamp in the gzip header), so rewriting an
    unchanged archive changes nothing in git. Raises ValueError for a journal without a header."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        for run, lines in journals.items():
            if RUN_SEPARATOR in run or not lines or "header" not in lines[0]:
                raise ValueError(f"journal of run '{run}' must start with a header line (and the name must not hold '{RUN_SEPARATOR}')")
            for line in lines:
                gz.write((json.dumps({"run": run, **line}) + "\n").encode())
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(buf.getvalue())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def read_archive(path: str) -> dict[str, Journal]:
    """``{run: journal lines}`` of an archive (the run tags removed), runs in file order.

    Raises FileNotFoundError for a missing file and ValueError, naming the file and line, for a
    line that is not JSON, has no run tag, or starts a run with anything but its header."""
    journals: dict[str, Journal] = {}
    try:
        with gzip.open(path, "rt") as f:
            text = f.read()
    except (gzip.BadGzipFile, EOFError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a gzip archive of evaluation journals: {e}") from e
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            run = row.pop("run")
        except (json.JSONDecodeError, KeyError, AttributeError, TypeError) as e:
            raise ValueError(f"{path}:{number} is not a tagged journal line ({e!r})") from e
        if run not in journals and "header" not in row:
            raise ValueError(f"{path}:{number}: run '{run}' does not start with its header line")
        journals.setdefault(run, []).append(row)
    return journals


def archived_journal(path: str, run: str | None = None) -> tuple[str, Journal]:
    """One run's ``(name, journal lines)`` from an archive; ``run`` None: the archive's only run.

    Raises ValueError listing the archive's runs when ``run`` is not among them (or is None and
    there are several)."""
    journals = read_archive(path)
    if run is None and len(journals) == 1:
        run = next(iter(journals))
    if run not in journals:
        what = f"no run '{run}'" if run is not None else f"{len(journals)} runs"
        raise ValueError(f"{path} holds {what}; name one as {path}{RUN_SEPARATOR}RUN, one of {list(journals)}")
    return run, journals[run]


def split_archive_path(path: str) -> tuple[str, str | None] | None:
    """``(archive, run or None)`` if ``path`` names an archive (``x.jsonl.gz`` or ``x.jsonl.gz#run``), else None."""
    archive, sep, run = path.partition(RUN_SEPARATOR)
    if not archive.endswith(ARCHIVE_SUFFIX):
        return None
    return archive, (run if sep else None)


def summary_of_results(results: dict, run: str, policy: str, journal: str, policy_id: str) -> dict:
    """A kept summary from a ``results.json`` payload: everything but the episodes, and where they are,
    plus ``init_states``, the init-state indices the episodes started from (a suite with fewer init
    states than ``init_state_offset`` + episodes wraps around to its first ones)."""
    keep = {k: results[k] for k in ("protocol", "step_limit", "per_task", "mean")}
    used = sorted({int(e["init_state"]) for e in results.get("episodes", [])})
    return {"run": run, "policy": policy, "policy_id": policy_id, "journal": journal, **keep, "init_states": used}


def _index_ranges(values: list[int]) -> str:
    """``[0, 1, 2, 7]`` -> ``0–2, 7``."""
    parts, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            parts.append(f"{start}–{v}" if v != start else f"{v}")
            start = None
    return ", ".join(parts)


def summary_table(summaries: list[dict]) -> str:
    """A markdown table of kept summaries, one row each: policy, suite, episodes, init states, seed,
    fixtures, per-task successes, successes, rate and its 95 % interval, and the record."""
    lines = ["| policy | suite | episodes | init states | seed | fixtures | successes per task | successes | rate | 95 % CI | record |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        p, m = s["protocol"], s["mean"]
        per_task = " ".join(str(r["successes"]) for r in s["per_task"])
        lo, hi = m["ci95"]
        first = p["init_state_offset"]
        states = _index_ranges(s["init_states"]) if s.get("init_states") else f"{first}–{first + p['episodes_per_task'] - 1}"
        lines.append(f"| `{s['policy']}` | {p['suite']} | {m['episodes']} ({p['episodes_per_task']} per task) "
                     f"| {states} | {p['seed']} | {p.get('fixtures', FIXTURES_UNIT_ORDER)} "
                     f"| {per_task} | {m['successes']} | {100 * m['success_rate']:.1f} % | {100 * lo:.1f}–{100 * hi:.1f} % "
                     f"| `{s['run']}.json`, `{s['journal']}` |")
    return "\n".join(lines) + "\n"


def load_summaries(folder: str) -> list[dict]:
    """Every kept summary (``*.json`` with a ``journal`` field) in ``folder``, by study (archive), then run."""
    out = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            with open(os.path.join(folder, name)) as f:
                payload = json.load(f)
            if "journal" in payload:
                out.append(payload)
    return sorted(out, key=lambda s: (s["journal"], s["run"]))
