"""The probe's command line: ``python -m distill.probe ...`` (see ``distill.probe``'s docstring)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from distill.config import add_config_args, exit_on_config_error
from distill.probe.config import DEFAULT_CONFIG, ProbeRunConfig
from distill.probe.features import cache_splits
from distill.probe.report import markdown_table, paired_table, record_in_card
from distill.probe.run import run_probe, score_own_heads


@exit_on_config_error
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m distill.probe", description="The 3D probe benchmark: how much 3D does a frozen encoder hold?")
    ap.add_argument("--encoder", help="random-vit-ti | random-cnn | random-frame-cpu | pixels | student:PATH | wan:PATH | hf:PATH")
    ap.add_argument("--data", help="a data spec: DIR or libero_sim:DIR, co3d:DIR[:HxW], dl3dv:DIR[:HxW], synthetic:N[:HxW]")
    ap.add_argument("--out", type=Path, help="output directory (cache, checkpoint, results)")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--max-train-clips", type=int)
    ap.add_argument("--max-test-clips", type=int)
    ap.add_argument("--min-gap", type=int)
    add_config_args(ap, default=DEFAULT_CONFIG, help="probe preset (config/probe/*.yaml); --set overrides any ProbeRunConfig field")
    ap.add_argument("--table", nargs="+", type=Path, metavar="OUT", help="print one table from runs' results.json")
    ap.add_argument("--cache-only", action="store_true",
                    help="only encode the splits into --out/cache (e.g. before --own-heads); no probe training")
    ap.add_argument("--own-heads", type=Path, metavar="MODEL_DIR",
                    help="score this artifact's own heads.onnx on the test features cached in --out by a probe run of its encoder")
    ap.add_argument("--versus", type=Path, metavar="OUT",
                    help="with --table: also compare every run with this run clip by clip (paired bootstrap CIs)")
    ap.add_argument("--record-in-card", type=Path, metavar="MODEL_DIR",
                    help="with --table: write the table into this student artifact's card (first run = its encoder)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = ap.parse_args(argv)
    command = " ".join(["python -m distill.probe", *argv])
    if args.table:
        results = [json.loads((p / "results.json").read_text()) for p in args.table]
        print(markdown_table(results), end="")
        if args.versus:
            same = [r for path, r in zip(args.table, results) if path.resolve() == args.versus.resolve()]
            baseline = same[0] if same else json.loads((args.versus / "results.json").read_text())
            print("\n" + paired_table(results, baseline), end="")
        if args.record_in_card:
            record_in_card(args.record_in_card, results)
            print(f"recorded in {args.record_in_card / 'card.json'}")
        return 0
    if not (args.own_heads and args.out) and not (args.encoder and args.data and args.out):
        ap.error("--encoder, --data and --out are required (or --table, or --own-heads with --out)")
    run = ProbeRunConfig.from_yaml(args.config, args.overrides, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                                   max_train_clips=args.max_train_clips, max_test_clips=args.max_test_clips,
                                   min_gap=args.min_gap)
    if args.own_heads:
        score_own_heads(args.own_heads, args.out, run, command=command)
        print((args.out / "own_heads" / "results.md").read_text(), end="")
        return 0
    if args.cache_only:
        for split, manifest in cache_splits(args.encoder, args.data, args.out, run).items():
            print(f"cached {split}: {args.out / 'cache' / split} ({manifest.get('count', '?')} samples)")
        return 0
    results = run_probe(args.encoder, args.data, args.out, run, command=command)
    print((args.out / "results.md").read_text(), end="")
    print(f"results: {args.out / 'results.json'}")
    return 0 if results else 1

