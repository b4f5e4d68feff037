"""One results file for every LIBERO suite evaluated: ``docs/libero/summary.json``.

Built from kept run summaries (``<run>.json``, :mod:`vega_eval.records`) and the policy cards they
name::

    {"<suite>": {"<variant>": {"successes": int, "episodes": int, "policy": "models/<name>",
                               "student": "<3D encoder name>", "runs": ["<run>", ...]}}}

``variant`` is the policy card's ``fusion`` (fused, 3d-only, semantic-only). Runs of one policy on
one suite are summed when they are disjoint (another evaluation seed or other init states); two
runs of the same protocol key (suite, seed, first init state, fixtures) overlap, because a
journal that resumes with more episodes per task re-scores the episodes it already holds, so only
the larger one counts. Two policies of the same variant on one suite are refused: which one the
file stands for must be chosen by the runs given.

    vega-ros libero-summary docs/policy/eval/bc-*-brisk-ft_spatial_30*.json --out docs/libero/summary.json
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from vega_eval.protocol import FIXTURES_UNIT_ORDER


class SummaryError(ValueError):
    """A run summary or policy card that cannot go into the results file (the message names it)."""


@dataclass(frozen=True)
class RunTotal:
    run: str
    suite: str
    policy: str  # the policy's name (models/<policy>)
    protocol_key: tuple  # (suite, seed, first init state, fixtures): runs sharing it overlap
    successes: int
    episodes: int


def run_total(summary: dict, source: str = "") -> RunTotal:
    """The totals of one kept run summary (``<run>.json``); SummaryError naming ``source`` if a field is missing."""
    try:
        p, m = summary["protocol"], summary["mean"]
        return RunTotal(run=summary["run"], suite=p["suite"], policy=summary["policy"],
                        protocol_key=(p["suite"], p["seed"], p["init_state_offset"], p.get("fixtures", FIXTURES_UNIT_ORDER)),
                        successes=int(m["successes"]), episodes=int(m["episodes"]))
    except (KeyError, TypeError) as e:
        raise SummaryError(f"{source or 'run summary'}: not a kept libero-eval summary (missing {e})") from None


def policy_identity(models_dir: str, policy: str) -> tuple[str, str]:
    """``(variant, student)`` of ``models_dir/policy/policy_card.json``: its fusion and its 3D encoder's
    name (``"none"`` for a policy without a 3D stream, whose card names no encoder)."""
    path = os.path.join(models_dir, policy, "policy_card.json")
    try:
        with open(path) as f:
            card = json.load(f)
        return str(card["fusion"]), str((card.get("encoder") or {}).get("name", "none"))
    except OSError as e:
        raise SummaryError(f"policy {policy!r}: cannot read its card {path} ({e.strerror})") from None
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise SummaryError(f"policy {policy!r}: {path} has no fusion / encoder name ({e})") from None


def build_summary(totals: list[RunTotal], identity: dict[str, tuple[str, str]], models_prefix: str = "models") -> tuple[dict, list[str]]:
    """The results file's payload from run totals and ``{policy: (variant, student)}``; also the
    runs left out as overlapping a larger run of the same protocol (a list of notes)."""
    chosen: dict[tuple, RunTotal] = {}
    notes = []
    for t in totals:
        key = (t.policy, t.protocol_key)
        other = chosen.get(key)
        if other is None or t.episodes > other.episodes:
            if other is not None:
                notes.append(f"{other.run} left out: {t.run} holds the same protocol with more episodes")
            chosen[key] = t
        else:
            notes.append(f"{t.run} left out: {other.run} holds the same protocol with at least as many episodes")
    out: dict[str, dict] = {}
    for t in sorted(chosen.values(), key=lambda t: (t.suite, t.policy, t.protocol_key)):
        variant, student = identity[t.policy]
        entry = out.setdefault(t.suite, {}).get(variant)
        policy_path = f"{models_prefix}/{t.policy}"
        if entry is None:
            out[t.suite][variant] = {"successes": t.successes, "episodes": t.episodes, "policy": policy_path,
                                     "student": student, "runs": [t.run]}
        elif entry["policy"] != policy_path:
            raise SummaryError(f"{t.suite}: two {variant} policies ({entry['policy']}, {policy_path}); give the runs of one")
        else:
            entry["successes"] += t.successes
            entry["episodes"] += t.episodes
            entry["runs"].append(t.run)
    return out, notes


def summary_markdown(payload: dict) -> str:
    """A markdown table of the results file: a row per suite, a column per variant (successes / episodes, rate)."""
    variants = sorted({v for suite in payload.values() for v in suite}, key=lambda v: (v != "fused", v))
    lines = ["| suite | " + " | ".join(f"`{v}`" for v in variants) + " | student |",
             "|---|" + "---|" * len(variants) + "---|"]
    for suite, row in sorted(payload.items()):
        cells = []
        for v in variants:
            e = row.get(v)
            cells.append("–" if e is None else f"{e['successes']} / {e['episodes']} ({100 * e['successes'] / max(e['episodes'], 1):.1f} %)")
        students = sorted({e["student"] for e in row.values()} - {"none"})
        lines.append(f"| {suite} | " + " | ".join(cells) + f" | {', '.join(students)} |")
    return "\n".join(lines) + "\n"


def write_summary(run_paths: list[str], models_dir: str, out: str) -> tuple[dict, list[str]]:
    """Read the run summaries and their policies' cards, write ``out`` (JSON); returns (payload, notes)."""
    totals = []
    for path in run_paths:
        try:
            with open(path) as f:
                totals.append(run_total(json.load(f), path))
        except OSError as e:
            raise SummaryError(f"{path}: {e.strerror}") from None
        except json.JSONDecodeError as e:
            raise SummaryError(f"{path}: not JSON ({e})") from None
    identity = {t.policy: policy_identity(models_dir, t.policy) for t in totals}
    payload, notes = build_summary(totals, identity)
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    return payload, notes
