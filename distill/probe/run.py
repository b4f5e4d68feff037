"""One probe benchmark run end to end: cache the splits, train the probe, score it and the ORB
baseline, write the results; and the scoring of an artifact's own heads on a run's cache."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from distill.metrics import Alignment
from distill.probe.baseline import orb_baseline
from distill.probe.config import ProbeRunConfig
from distill.probe.evaluate import ArtifactHeads, evaluate
from distill.probe.features import TRAIN_KEYS, cache_splits, load_cached_split
from distill.probe.objective import build_probe, train_probe
from distill.probe.report import write_results

TRAIN_DIR = "train"
"""``OUT/train/``: the shared loop's run directory (checkpoints, ``metrics.jsonl``, ``curves.png``)."""


def run_probe(spec: str, data: str, out: Path, run: ProbeRunConfig, progress: bool = True,
              command: str | None = None) -> dict:
    """The whole benchmark for one encoder; returns (and writes) the results dict.

    A rerun finds the cache and the finished checkpoint, trains no more steps and only re-scores.
    ``command`` is recorded in ``results.json`` as the command line that measured the numbers.
    """
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    manifests = cache_splits(spec, data, out, run)
    caches = {split: load_cached_split(out / "cache" / split, keys=TRAIN_KEYS if split == run.train_split else None)
              for split in (run.train_split, run.test_split)}
    t_cache = time.time() - t0
    probe = build_probe(run, manifests[run.train_split])
    t1 = time.time()
    history = train_probe(probe, caches[run.train_split], run, out / TRAIN_DIR, progress=progress)
    t_train = time.time() - t1
    summary, preds = evaluate(probe, caches[run.test_split], Alignment(run.alignment))
    orb = orb_baseline(caches[run.test_split], run.orb_features)
    results = {
        "encoder": spec,
        "encoder_info": manifests[run.train_split].get("encoder"),
        "data": data,
        "command": command,
        "config": dataclasses.asdict(run),
        "probe_config": probe.cfg.to_dict(),
        "train": {"clips": int(caches[run.train_split]["tokens"].shape[0]), "steps": run.steps,
                  "final": history[-1] if history else None, "seconds": round(t_train, 1)},
        "cache_seconds": round(t_cache, 1),
        "test": summary,
        "orb": orb,
    }
    write_results(out, results, caches[run.test_split], preds, run.num_vis)
    return results


def score_own_heads(model_dir: str | Path, probe_out: Path, run: ProbeRunConfig, command: str | None = None) -> dict:
    """Score an artifact's own heads on the test features a probe run of its encoder cached.

    ``probe_out`` is that run's ``--out``; its cache must come from this artifact's ``encoder.onnx``
    (``frame.onnx`` in format version 2; sha256 checked). Writes ``probe_out/own_heads/results.{json,md}``
    in the probe's format.
    """
    from distill.encoders import token_graph_of_card

    heads = ArtifactHeads(model_dir)
    graph = token_graph_of_card(heads.card)
    manifest = json.loads((probe_out / "cache" / run.test_split / "manifest.json").read_text())
    measured = manifest.get("encoder", {}).get("sha256")
    if measured != heads.card.files[graph]:
        raise ValueError(f"{probe_out}: features cached from encoder sha256 {measured}, not {model_dir}'s {graph}")
    cache = load_cached_split(probe_out / "cache" / run.test_split)
    summary, preds = evaluate(heads, cache, Alignment(run.alignment))
    out = probe_out / "own_heads"
    out.mkdir(exist_ok=True)
    results = {"encoder": f"{manifest['spec']} (own heads)", "encoder_info": manifest.get("encoder"),
               "data": manifest["source"]["data"], "command": command,
               "config": dataclasses.asdict(run), "test": summary, "orb": orb_baseline(cache, run.orb_features)}
    write_results(out, results, cache, preds, run.num_vis)
    return results
