"""Paired comparison of evaluation runs: exact McNemar against hand-computed values, the kept
evaluation records (summaries and archived journals), and the refusals (other protocols, corrupt files)."""

from __future__ import annotations

import json
import math
import os

import pytest

from vega_eval.compare import (
    EvalRun,
    binomial_tail,
    common_episodes,
    comparison_markdown,
    load_run,
    mcnemar_exact,
    paired_outcome,
)
from vega_eval.evaluate import journal_header, read_journal
from vega_eval.protocol import FIXTURES_SEEDED, FIXTURES_UNIT_ORDER, EpisodeResult, EvalProtocol
from vega_eval.records import archived_journal
from vega_ros.cli import main

EVAL_DIR = os.path.join(os.path.dirname(__file__), "..", "docs", "policy", "eval")
LONG = os.path.join(EVAL_DIR, "long.jsonl.gz")  # the session-10..12 study: fused, 3d-only, semantic-only at 20 episodes per task
PROTOCOL = {"suite": "libero_spatial", "settle_steps": 10, "max_steps": None, "seed": 7, "image_size": 128,
            "init_state_offset": 20, "step_limit": 220}


def _run(name: str, outcomes: dict[tuple[int, int], bool], protocol: dict | None = None) -> EvalRun:
    eps = {k: EpisodeResult(task_id=k[0], episode=k[1], init_state=20 + k[1], success=s, steps=100, wall_s=1.0)
           for k, s in outcomes.items()}
    return EvalRun(name=name, protocol=protocol or dict(PROTOCOL), episodes=eps)


def _write_journal(path, run: str) -> None:
    """An archived run as the ``episodes.jsonl`` that ``libero-eval`` wrote."""
    path.write_text("".join(json.dumps(line) + "\n" for line in archived_journal(LONG, run)[1]))


def test_mcnemar_exact_known_values():
    # 5 discordant pairs all one way: P = 1/32 one-sided, 1/16 two-sided.
    assert mcnemar_exact(5, 0) == pytest.approx((1 / 32, 1 / 16))
    assert mcnemar_exact(0, 5) == pytest.approx((1.0, 1 / 16))
    assert mcnemar_exact(0, 0) == (1.0, 1.0)
    # 3 of 4: P(X >= 3) = 5/16; two-sided 10/16.
    assert mcnemar_exact(3, 1) == pytest.approx((5 / 16, 10 / 16))
    # Balanced: the two-sided p is capped at 1.
    assert mcnemar_exact(2, 2)[1] == 1.0
    assert binomial_tail(0, 7) == 1.0
    assert binomial_tail(7, 7) == pytest.approx(1 / 128)
    assert sum(math.comb(10, i) for i in range(10 + 1)) / 2**10 == binomial_tail(0, 10)


def test_paired_outcome_counts_and_common_episodes():
    a = _run("a", {(0, 0): True, (0, 1): True, (1, 0): False, (1, 1): False, (2, 0): True})
    b = _run("b", {(0, 0): True, (0, 1): False, (1, 0): True, (1, 1): False})
    keys = common_episodes([a, b])
    assert keys == [(0, 0), (0, 1), (1, 0), (1, 1)]  # (2, 0) only in a: left out
    o = paired_outcome(a, b, keys)
    assert (o.episodes, o.both, o.only_a, o.only_b, o.neither) == (4, 1, 1, 1, 1)
    assert o.p_two_sided == 1.0


def test_other_protocols_do_not_pair():
    a = _run("a", {(0, 0): True})
    b = _run("b", {(0, 0): True}, {**PROTOCOL, "seed": 8})
    with pytest.raises(ValueError, match="different protocols"):
        common_episodes([a, b])


def test_runs_from_before_seeded_fixtures_pair_only_with_each_other(tmp_path):
    """Shipped runs predate ``EvalProtocol.fixtures`` (their fixtures moved with the unit order): they
    load as such, pair with each other, and neither pair with nor resume into a seeded run."""
    legacy_json = load_run(os.path.join(EVAL_DIR, "bc-3d-only-long_spatial_20.json"))
    legacy_journal = load_run(f"{LONG}#bc-fused-long_spatial_20")
    assert legacy_json.protocol["fixtures"] == legacy_journal.protocol["fixtures"] == FIXTURES_UNIT_ORDER
    assert len(common_episodes([legacy_json, legacy_journal])) == 200
    header = journal_header(EvalProtocol(seed=7, init_state_offset=20), "")
    assert header["protocol"]["fixtures"] == FIXTURES_SEEDED
    seeded = EvalRun(name="seeded", protocol=header["protocol"], episodes=legacy_json.episodes)
    with pytest.raises(ValueError, match="different protocols"):
        common_episodes([legacy_json, seeded])
    journal = tmp_path / "episodes.jsonl"
    _write_journal(journal, "bc-fused-long_spatial_20")
    with pytest.raises(ValueError, match="another policy or protocol"):
        read_journal(str(journal), {**header, "policy": json.loads(journal.read_text().splitlines()[0])["header"]["policy"]})


def test_shipped_evaluations_pair_up():
    """The session-11 numbers: fused 128/200, 3d-only 114/200, 88 both, 40 / 26 discordant."""
    fused = load_run(f"{LONG}#bc-fused-long_spatial_20", "fused")
    d3 = load_run(os.path.join(EVAL_DIR, "bc-3d-only-long_spatial_20.json"), "3d-only")
    assert d3.task_names and d3.task_names[5].startswith("pick up the black bowl on the ramekin")
    keys = common_episodes([fused, d3])
    assert len(keys) == 200
    o = paired_outcome(fused, d3, keys)
    assert (o.both, o.only_a, o.only_b, o.neither) == (88, 40, 26, 46)
    assert o.p_a_better == pytest.approx(binomial_tail(40, 66))
    assert 0.05 < o.p_a_better < 0.06
    text = comparison_markdown([fused, d3])
    assert "**128/200 (64.0 %)**" in text and "**114/200 (57.0 %)**" in text
    assert "| `3d-only` | 88 | 40 | 26 | 46 |" in text


def test_cli_compares_directories_and_rejects_bad_files(tmp_path, capsys):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _write_journal(run_dir / "episodes.jsonl", "bc-fused-long_spatial_20")
    out = tmp_path / "cmp.md"
    assert main(["libero-compare", str(run_dir), f"{LONG}#bc-3d-only-long_spatial_20",
                 "--names", "fused", "3d-only", "--out", str(out)]) == 0
    assert "| `3d-only` | 88 | 40 | 26 | 46 |" in out.read_text()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"task_id": 0}) + "\n")
    assert main(["libero-compare", str(run_dir), str(bad)]) == 2
    assert "not a libero-eval journal" in capsys.readouterr().err
    assert main(["libero-compare", str(run_dir), str(tmp_path / "missing.jsonl")]) == 2
    assert main(["libero-compare", str(run_dir), str(run_dir), "--names", "one"]) == 2


def test_success_bars_give_each_task_and_all_with_wilson_intervals():
    from vega_eval.compare_plot import success_bars
    from vega_eval.protocol import wilson_interval

    # task 0: a solves 2/2, b 1/2; task 1: a 0/2, b 2/2; a's (1, 1) is not in b's run, so it is not common
    a = _run("a", {(0, 0): True, (0, 1): True, (1, 0): False, (1, 1): False, (1, 2): True})
    b = _run("b", {(0, 0): True, (0, 1): False, (1, 0): True, (1, 1): True})
    labels, groups = success_bars([a, b])
    assert labels == ["0", "1", "all"]
    assert [g[0][0] for g in groups] == [1.0, 0.0, 0.5] and [g[1][0] for g in groups] == [0.5, 1.0, 0.75]
    assert groups[2][1][1:] == pytest.approx(wilson_interval(3, 4))
    assert all(lo <= r <= hi for g in groups for r, lo, hi in g)
    with pytest.raises(ValueError, match="in common"):
        success_bars([a, _run("c", {(5, 0): True})])


def test_cli_draws_the_per_task_chart(tmp_path):
    cv2 = pytest.importorskip("cv2")
    pytest.importorskip("matplotlib")
    png = tmp_path / "charts" / "cmp.png"
    runs = [f"{LONG}#bc-{v}-long_spatial_20" for v in ("fused", "3d-only", "semantic-only")]
    assert main(["libero-compare", *runs, "--names", "fused", "3d-only", "semantic-only", "--plot", str(png)]) == 0
    img = cv2.imread(str(png))
    assert img is not None and img.shape[0] >= 300 and img.shape[1] >= 600
    assert img.std() > 10  # bars drawn, not a blank canvas


def test_pooled_runs_pair_episode_by_episode_across_suites(capsys):
    """A+B pools one policy's runs of several suites: tasks are numbered on, a pooled run pairs only with one
    pooled from the same protocols, and the kept distractor-suite records give their pooled counts."""
    from vega_eval.compare import pool_runs

    other = {**PROTOCOL, "suite": "libero_spatial_with_milk"}
    a = pool_runs([_run("a1", {(0, 0): True, (1, 0): False}), _run("a2", {(0, 0): True}, other)], "a")
    b = pool_runs([_run("b1", {(0, 0): False, (1, 0): False}), _run("b2", {(0, 0): True}, other)], "b")
    assert sorted(a.episodes) == [(0, 0), (1, 0), (2, 0)] and a.task_names[2].startswith("libero_spatial_with_milk 0")
    o = paired_outcome(a, b, common_episodes([a, b]))
    assert (o.both, o.only_a, o.only_b, o.neither) == (1, 1, 0, 1)
    swapped = pool_runs([_run("b2", {(0, 0): True}, other), _run("b1", {(0, 0): False, (1, 0): False})], "c")
    with pytest.raises(ValueError, match="different protocols"):
        common_episodes([a, swapped])
    pooled = ["+".join(os.path.join(EVAL_DIR, f"bc-{v}-brisk-ft_spatial_{s}_2.json") for s in ("with_mug", "with_milk", "with_yellow_book"))
              for v in ("fused", "3d-only")]
    assert main(["libero-compare", *pooled, "--names", "fused", "3d-only"]) == 0
    out = capsys.readouterr().out
    assert "**38/60 (63.3 %)**" in out and "**43/60 (71.7 %)**" in out and "| `3d-only` | 33 | 5 | 10 | 12 |" in out
