"""Kept evaluation records (vega_eval.records): the journal archive round trip and its refusals,
runs read from an archive or a summary, and the committed records agreeing with each other."""

from __future__ import annotations

import gzip
import json
import os

import pytest

from vega_eval.compare import comparison_markdown, load_run
from vega_eval.records import archived_journal, load_summaries, read_archive, summary_table, write_archive

EVAL_DIR = os.path.join(os.path.dirname(__file__), "..", "docs", "policy", "eval")
PROTOCOL = {"suite": "libero_spatial", "settle_steps": 10, "max_steps": None, "seed": 7, "image_size": 128,
            "init_state_offset": 20, "fixtures": "seeded", "step_limit": 220}


def _journal(policy: str, outcomes: list[bool]) -> list[dict]:
    rows = [{"task_id": 0, "episode": k, "init_state": 20 + k, "success": s, "steps": 50, "wall_s": 1.5} for k, s in enumerate(outcomes)]
    return [{"header": {"policy": policy, "protocol": dict(PROTOCOL)}}, *rows]


def test_archive_round_trip_tags_every_line_and_is_byte_stable(tmp_path):
    journals = {"a_spatial_2": _journal("sha-a", [True, False]), "b_spatial_3": _journal("sha-b", [False, True, True])}
    path = tmp_path / "study.jsonl.gz"
    write_archive(str(path), journals)
    assert read_archive(str(path)) == journals
    with gzip.open(path, "rt") as f:
        lines = [json.loads(line) for line in f]
    assert [line["run"] for line in lines] == ["a_spatial_2"] * 3 + ["b_spatial_3"] * 4
    first = path.read_bytes()
    write_archive(str(path), journals)
    assert path.read_bytes() == first  # no time stamp: an unchanged archive is an unchanged file in git
    with pytest.raises(ValueError, match="header"):
        write_archive(str(tmp_path / "bad.jsonl.gz"), {"c": journals["a_spatial_2"][1:]})


def test_bad_archives_are_refused_naming_the_file_and_line(tmp_path):
    untagged = tmp_path / "untagged.jsonl.gz"
    with gzip.open(untagged, "wt") as f:
        f.write(json.dumps({"run": "a", "header": {}}) + "\n" + json.dumps({"task_id": 0}) + "\n")
    with pytest.raises(ValueError, match=r"untagged.jsonl.gz:2 is not a tagged journal line"):
        read_archive(str(untagged))
    headless = tmp_path / "headless.jsonl.gz"
    with gzip.open(headless, "wt") as f:
        f.write(json.dumps({"run": "a", "task_id": 0}) + "\n")
    with pytest.raises(ValueError, match=r"headless.jsonl.gz:1: run 'a' does not start with its header"):
        read_archive(str(headless))
    plain = tmp_path / "plain.jsonl.gz"
    plain.write_text("not gzip\n")
    with pytest.raises(ValueError, match="not a gzip archive"):
        read_archive(str(plain))
    with pytest.raises(FileNotFoundError):
        read_archive(str(tmp_path / "missing.jsonl.gz"))


def test_runs_are_read_out_of_an_archive_by_name(tmp_path):
    path = str(tmp_path / "study.jsonl.gz")
    write_archive(path, {"a": _journal("sha-a", [True, False]), "b": _journal("sha-b", [False, True, True])})
    b = load_run(f"{path}#b")
    assert b.name == "b" and b.protocol == PROTOCOL
    assert [b.episodes[(0, k)].success for k in range(3)] == [False, True, True]
    assert load_run(f"{path}#a", "label").name == "label"
    with pytest.raises(ValueError, match=r"holds 2 runs; name one .*\['a', 'b'\]"):
        load_run(path)
    with pytest.raises(ValueError, match="no run 'c'"):
        load_run(f"{path}#c")
    single = str(tmp_path / "single.jsonl.gz")
    write_archive(single, {"only": _journal("sha", [True])})
    assert load_run(single).name == "only"


def test_a_summary_reads_its_episodes_from_its_archive_and_must_match_them(tmp_path):
    write_archive(str(tmp_path / "study.jsonl.gz"), {"a": _journal("sha-a", [True, False, True])})
    protocol = {k: v for k, v in PROTOCOL.items() if k != "step_limit"} | {"episodes_per_task": 3, "tasks": None}
    summary = {"run": "a", "policy": "a", "policy_id": "sha-a", "journal": "study.jsonl.gz", "protocol": protocol,
               "step_limit": 220, "per_task": [{"task_id": 0, "task": "pick it up", "episodes": 3, "successes": 2}],
               "mean": {"episodes": 3, "successes": 2}}
    (tmp_path / "a.json").write_text(json.dumps(summary))
    run = load_run(str(tmp_path / "a.json"))
    assert run.task_names == {0: "pick it up"} and sum(r.success for r in run.episodes.values()) == 2
    (tmp_path / "a.json").write_text(json.dumps({**summary, "mean": {"episodes": 3, "successes": 3}}))
    with pytest.raises(ValueError, match="does not match its archived journal: 3/3"):
        load_run(str(tmp_path / "a.json"))
    (tmp_path / "a.json").write_text(json.dumps({**summary, "protocol": {**protocol, "seed": 8}}))
    with pytest.raises(ValueError, match="does not match"):
        load_run(str(tmp_path / "a.json"))


def test_every_kept_summary_loads_and_the_summary_table_is_current():
    summaries = load_summaries(EVAL_DIR)
    archives = sorted(n for n in os.listdir(EVAL_DIR) if n.endswith(".jsonl.gz"))
    archived = {run for a in archives for run in read_archive(os.path.join(EVAL_DIR, a))}
    assert {s["run"] for s in summaries} == archived and len(archived) == 44  # every run has its summary and its episodes
    for s in summaries:
        run = load_run(os.path.join(EVAL_DIR, s["run"] + ".json"))  # checks the counts against the archive
        assert len(run.episodes) == s["mean"]["episodes"]
        assert archived_journal(os.path.join(EVAL_DIR, s["journal"]), s["run"])[1][0]["header"]["policy"] == s["policy_id"]
    with open(os.path.join(EVAL_DIR, "summary.md")) as f:
        text = f.read()
    assert summary_table(summaries) in text, "docs/policy/eval/summary.md is out of date: regenerate its table with summary_table"
    shipped = "| `bc-fused-brisk-ft` | libero_spatial | 300 (30 per task) | 20–49 | 8 | seeded | 29 29 30 29 26 24 30 29 28 27 | 281 | 93.7 %"
    assert shipped + " | 90.3–95.9 %" in text


@pytest.mark.parametrize("size", ["20", "30", "30_seed8"])
def test_the_shipped_policies_comparisons_come_from_the_kept_records(size):
    variants = ("fused", "3d-only", "semantic-only")
    runs = [load_run(os.path.join(EVAL_DIR, f"bc-{v}-brisk-ft_spatial_{size}.json"), f"{v}-brisk-ft") for v in variants]
    with open(os.path.join(EVAL_DIR, f"brisk_recipe_compare_spatial_{size}.md")) as f:
        assert comparison_markdown(runs) == f.read()


def test_a_full_results_file_and_its_kept_summary_are_the_same_run(tmp_path):
    """``libero-eval``'s results.json (episodes inline) and the kept summary (episodes archived) read alike."""
    kept = os.path.join(EVAL_DIR, "bc-fused-long_spatial_20.json")
    with open(kept) as f:
        summary = json.load(f)
    lines = archived_journal(os.path.join(EVAL_DIR, summary["journal"]), summary["run"])[1]
    results = {k: summary[k] for k in ("protocol", "step_limit", "per_task", "mean")} | {"episodes": lines[1:]}
    (tmp_path / "results.json").write_text(json.dumps(results))
    full, archived = load_run(str(tmp_path / "results.json")), load_run(kept)
    assert full.protocol == archived.protocol and full.episodes == archived.episodes and full.task_names == archived.task_names
    assert sum(r.success for r in full.episodes.values()) == 128


def test_a_summary_says_which_init_states_its_episodes_used():
    """A suite with fewer init states than offset + episodes wraps to its first ones; the table says so."""
    from vega_eval.records import summary_of_results

    protocol = {**PROTOCOL, "episodes_per_task": 2, "tasks": None}
    results = {"protocol": protocol, "step_limit": 220, "per_task": [], "episodes": [
        {"task_id": 0, "episode": k, "init_state": s, "success": True, "steps": 5, "wall_s": 1.0} for k, s in enumerate([0, 1])],
        "mean": {"episodes": 2, "successes": 2, "success_rate": 1.0, "ci95": [0.34, 1.0]}}
    s = summary_of_results(results, "a_spatial_2", "a", "a.jsonl.gz", "sha")
    assert s["init_states"] == [0, 1] and "| 0–1 |" in summary_table([s])
    del s["init_states"]  # a summary kept before the field: the protocol's offset
    assert "| 20–21 |" in summary_table([s])
