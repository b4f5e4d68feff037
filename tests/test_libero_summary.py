"""docs/libero/summary.json: runs summed across seeds, overlapping runs counted once, bad input named."""

from __future__ import annotations

import json

import pytest

from vega_eval.summary import RunTotal, SummaryError, build_summary, policy_identity, run_total, summary_markdown, write_summary


def _summary(run: str, policy: str, seed: int, per_task: int, successes: int, suite: str = "libero_spatial") -> dict:
    return {"run": run, "policy": policy, "protocol": {"suite": suite, "seed": seed, "init_state_offset": 20,
                                                        "episodes_per_task": per_task, "fixtures": "seeded"},
            "mean": {"episodes": 10 * per_task, "successes": successes}}


def test_seeds_are_summed_and_a_resumed_run_counts_once():
    totals = [run_total(_summary("fused_20", "p-fused", 7, 20, 180)), run_total(_summary("fused_30", "p-fused", 7, 30, 268)),
              run_total(_summary("fused_30_s8", "p-fused", 8, 30, 281)), run_total(_summary("sem_30", "p-sem", 7, 30, 264))]
    payload, notes = build_summary(totals, {"p-fused": ("fused", "student-a"), "p-sem": ("semantic-only", "none")})
    fused = payload["libero_spatial"]["fused"]
    assert (fused["successes"], fused["episodes"]) == (268 + 281, 600)  # the 20-per-task run overlaps the 30 one
    assert fused["runs"] == ["fused_30", "fused_30_s8"] and fused["policy"] == "models/p-fused"
    assert len(notes) == 1 and "fused_20 left out" in notes[0]
    table = summary_markdown(payload)
    assert "549 / 600 (91.5 %)" in table and "264 / 300 (88.0 %)" in table and "none" not in table


def test_two_policies_of_one_variant_on_a_suite_are_refused():
    totals = [RunTotal("a", "libero_goal", "p1", ("libero_goal", 7, 20, "seeded"), 5, 10),
              RunTotal("b", "libero_goal", "p2", ("libero_goal", 7, 20, "seeded"), 6, 10)]
    with pytest.raises(SummaryError, match="two fused policies"):
        build_summary(totals, {"p1": ("fused", "s"), "p2": ("fused", "s")})


def test_bad_records_and_missing_cards_are_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"run": "x"}))
    with pytest.raises(SummaryError, match="bad.json: not a kept libero-eval summary"):
        write_summary([str(bad)], str(tmp_path), str(tmp_path / "out.json"))
    good = tmp_path / "good.json"
    good.write_text(json.dumps(_summary("r", "no-such-policy", 7, 2, 3)))
    with pytest.raises(SummaryError, match="no-such-policy"):
        write_summary([str(good)], str(tmp_path), str(tmp_path / "out.json"))
    (tmp_path / "no-such-policy").mkdir()
    (tmp_path / "no-such-policy" / "policy_card.json").write_text(json.dumps({"fusion": "fused", "encoder": {"name": "st"}}))
    payload, _ = write_summary([str(good)], str(tmp_path), str(tmp_path / "out.json"))
    assert json.loads((tmp_path / "out.json").read_text()) == payload
    assert payload["libero_spatial"]["fused"]["student"] == "st"


def test_the_kept_libero_spatial_records_give_the_published_totals():
    """docs/libero/summary.json is what the kept records say (549 / 534 / 533 of 600 when it was written)."""
    import glob

    runs = sorted(glob.glob("docs/policy/eval/bc-*-brisk-ft_spatial_30*.json"))
    totals = [run_total(json.load(open(p)), p) for p in runs]

    payload, _ = build_summary(totals, {t.policy: policy_identity("models", t.policy) for t in totals})
    got = {v: (e["successes"], e["episodes"]) for v, e in payload["libero_spatial"].items()}
    recorded = {v: (e["successes"], e["episodes"]) for v, e in json.load(open("docs/libero/summary.json"))["libero_spatial"].items()}
    assert got == recorded
