"""`vega-ros`: the command-line entry point.

  vega-ros demo [--duration 40] [--source libero|synthetic] [--out demo_out]   the main job
  vega-ros bringup [--params config/perception.yaml] [--camera sim|/ns]        nodes as processes
  vega-ros build-engine --model models/<name> [--backend tensorrt]             build / check an engine
  vega-ros check-model models/<name>                                           validate an artifact
  vega-ros models [--verify]                                                   the model catalog (and its sha256)
  vega-ros libero-eval --suite libero_spatial --policy models/<policy> [--episodes 50] [--workers 2]
  vega-ros libero-compare RUN_A RUN_B [...] [--names a b ...] [--plot PNG]     paired success of eval runs
  vega-ros libero-summary RUN.json [...] [--out docs/libero/summary.json]       one results file for every suite
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vega-ros", description="vega_ros command line", formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="the main job: simulated camera -> perception over real DDS, summary in demo_out/")
    demo.add_argument("--out", default="demo_out", help="output directory")
    demo.add_argument("--duration", type=float, default=40.0, help="seconds to stream after the first depth map")
    demo.add_argument("--source", default="libero", choices=("libero", "synthetic"), help="simulated scene")
    demo.add_argument("--model", default="", help="model artifact directory (default: the shipped one)")
    demo.add_argument("--backend", default="auto", help="auto | tensorrt | onnxruntime-cuda | onnxruntime-cpu")
    demo.add_argument("--rate", type=float, default=10.0, help="camera rate (Hz)")

    bring = sub.add_parser("bringup", help="start the perception node (and a simulated camera) from a params file, as separate processes")
    bring.add_argument("--params", default=None, help="perception params file (default config/perception.yaml)")
    bring.add_argument("--camera", default="sim", help="'sim' starts the simulated camera; else the camera namespace, e.g. /camera")
    bring.add_argument("--camera-params", default=None, help="sim camera params file (default config/sim_camera.yaml)")
    bring.add_argument("--sim-source", default=None, choices=("libero", "synthetic"), help="override the sim camera's scene")
    bring.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0 = until Ctrl-C)")

    eng = sub.add_parser("build-engine", help="load an artifact on a backend (TensorRT builds and caches its engine)")
    eng.add_argument("--model", default="", help="model artifact directory")
    eng.add_argument("--backend", default="auto")
    eng.add_argument("--trt-cache-dir", default=None)

    chk = sub.add_parser("check-model", help="validate an artifact: card fields, sha256, ONNX signatures")
    chk.add_argument("model")

    mod = sub.add_parser("models", help="the shipped models (models/catalog.json) and the archived ones with their restore commands")
    mod.add_argument("--verify", action="store_true", help="also check the sha256 and size of every shipped file")

    ev = sub.add_parser("libero-eval", help="closed-loop LIBERO evaluation of an exported policy (standard protocol)")
    ev.add_argument("--suite", default="libero_spatial")
    ev.add_argument("--policy", required=True, help="policy artifact directory, or 'noop' (holds still: the floor)")
    ev.add_argument("--models-root", default=None, help="where the policy's encoder artifact lives (default: next to the policy)")
    ev.add_argument("--episodes", type=int, default=50, help="episodes per task (episode k starts from init state k)")
    ev.add_argument("--tasks", type=int, nargs="*", default=None, help="task indices (default: all)")
    ev.add_argument("--max-steps", type=int, default=None, help="override the suite's step limit")
    ev.add_argument("--init-state-offset", type=int, default=0,
                    help="episode k starts from init state offset + k: hold out the states demos were recorded from")
    ev.add_argument("--seed", type=int, default=7)
    ev.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1), help="one process per core")
    ev.add_argument("--threads", type=int, default=None,
                    help="ONNX Runtime threads per worker (default: cores // workers, at least 1, so workers do not oversubscribe)")
    ev.add_argument("--execute-steps", type=int, default=None, help="actions executed per predicted chunk (default: the card's)")
    ev.add_argument("--temporal-ensemble", type=float, default=None, metavar="M",
                    help="predict at every step and execute ACT's weighted mean of the overlapping chunks (weight exp(-M i))")
    ev.add_argument("--language-encoder", default="auto",
                    help="sentence encoder artifact for instructions the policy does not know (a reworded *_lan suite); "
                         "'auto' = models/minilm-l6-v2-int8 beside the policy, 'none' = refuse them")
    ev.add_argument("--language-mode", choices=("nearest", "embed"), default="nearest",
                    help="an unknown instruction becomes the nearest known one (default) or its own embedding")
    ev.add_argument("--videos", type=int, default=3, help="GIFs of the first episode of this many tasks")
    ev.add_argument("--out", default=None, help="default: eval_out/<suite>-<policy name>")

    cmp_ = sub.add_parser("libero-compare", help="per-task and paired (exact McNemar) success of libero-eval runs of one protocol")
    cmp_.add_argument("runs", nargs="+", help="eval output dirs, their episodes.jsonl / results.json, kept summaries <run>.json, "
                                              "or ARCHIVE.jsonl.gz#RUN; A+B+C pools runs of one policy (e.g. several suites)")
    cmp_.add_argument("--names", nargs="*", default=None, help="a label per run (default: the paths)")
    cmp_.add_argument("--reference", type=int, default=0, help="index of the run the others are paired with")
    cmp_.add_argument("--out", default=None, help="also write the markdown here")
    cmp_.add_argument("--plot", default=None, metavar="PNG", help="also draw per-task success with 95 %% intervals here (matplotlib)")
    lang = sub.add_parser("libero-language", help="does each reworded instruction of a suite find its task among the policy's?")
    lang.add_argument("--policy", default=None, help="policy artifact (its language_embeddings.json are the known instructions); "
                                                    "default: the standard suite's instructions, embedded by --encoder")
    lang.add_argument("--encoder", default=os.path.join("models", "minilm-l6-v2-int8"), help="sentence encoder artifact")
    lang.add_argument("--suite", required=True, nargs="+", help="perturbed suites, e.g. libero_spatial_lan")
    lang.add_argument("--out", default=None, help="also write the report (JSON) here")
    summ = sub.add_parser("libero-summary", help="docs/libero/summary.json: successes per suite and variant from kept run summaries")
    summ.add_argument("runs", nargs="+", help="kept run summaries <run>.json (docs/policy/eval/)")
    summ.add_argument("--models-dir", default="models", help="where the runs' policies (and their policy_card.json) are")
    summ.add_argument("--out", default=os.path.join("docs", "libero", "summary.json"))
    return parser


def _libero_language(args) -> int:
    import json

    from vega_eval.language import match_report, suite_instructions
    from vega_eval.protocol import base_suite
    from vega_ros.language import SentenceEncoder, SentenceEncoderError
    from vega_ros.policy_runtime import load_language_embeddings

    try:
        encoder = SentenceEncoder(args.encoder)
        known = load_language_embeddings(args.policy) if args.policy else None
        reports = {}
        for suite in args.suite:
            base = base_suite(suite)
            if base is None or base == suite:
                raise ValueError(f"{suite} is not a perturbed version of a standard suite")
            reference = suite_instructions(base)
            pool = known if known is not None else dict(zip(reference, encoder.embed(reference)))
            reports[suite] = {"base_suite": base, **match_report(suite_instructions(suite), reference, pool, encoder)}
    except (OSError, ValueError, SentenceEncoderError) as e:
        print(f"libero-language: {e}", file=sys.stderr)
        return 2
    for suite, r in reports.items():
        print(f"## {suite}: {r['correct']}/{r['tasks_n']} instructions find the {r['base_suite']} task of the same number "
              "(the goal of a reworded `_lan` suite; where the goal changed, as in `_task`, it means the old task)")
        print(f"| task | instruction | nearest known (cosine, margin) | same task as in {r['base_suite']} |\n|---|---|---|---|")
        for row in r["tasks"]:
            print(f"| {row['task']} | {row['instruction']} | {row['matched']} ({row['cosine']:.3f}, {row['margin']:.3f}) | "
                  f"{'yes' if row['correct'] else '**no**'} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"policy": os.path.basename(os.path.normpath(args.policy)) if args.policy else None, "encoder": encoder.card.name,
                       "suites": reports}, f, indent=1)
            f.write("\n")
        print(f"[libero-language] wrote {args.out}")
    return 0


def _libero_summary(args) -> int:
    from vega_eval.summary import SummaryError, summary_markdown, write_summary

    try:
        payload, notes = write_summary(args.runs, args.models_dir, args.out)
    except SummaryError as e:
        print(f"libero-summary: {e}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"[libero-summary] {note}")
    print(summary_markdown(payload), end="")
    print(f"[libero-summary] wrote {args.out}")
    return 0


def worker_threads(workers: int, cores: int | None = None) -> int:
    """ONNX Runtime threads per evaluation worker that fill the cores without oversubscribing them."""
    return max(1, (cores or os.cpu_count() or 1) // max(1, workers))


class _PolicyFactory:
    """Picklable: builds the policy inside each evaluation worker."""

    def __init__(self, policy: str, models_root: str | None, execute_steps: int | None = None,
                 temporal_ensemble: float | None = None, threads: int | None = None,
                 language_encoder: str | None = "auto", language_mode: str = "nearest") -> None:
        self.policy, self.models_root = policy, models_root
        self.execute_steps, self.temporal_ensemble, self.threads = execute_steps, temporal_ensemble, threads
        self.language_encoder = None if language_encoder in (None, "", "none") else language_encoder
        self.language_mode = language_mode

    def __call__(self):
        if self.policy == "noop":
            from vega_ros.policy_io import NoOpPolicy

            return NoOpPolicy()
        from vega_ros.policy_runtime import OnnxPolicy

        return OnnxPolicy(self.policy, models_root=self.models_root, execute_steps=self.execute_steps,
                          temporal_ensemble=self.temporal_ensemble, threads=self.threads,
                          language_encoder=self.language_encoder, language_mode=self.language_mode)


def _libero_eval(args) -> int:
    from vega_eval.evaluate import MissingInitStates, evaluate
    from vega_eval.protocol import EvalProtocol

    name = "noop" if args.policy == "noop" else os.path.basename(os.path.normpath(args.policy))
    tag = "".join([f"-exec{args.execute_steps}" if args.execute_steps is not None else "",
                   f"-ensemble{args.temporal_ensemble:g}" if args.temporal_ensemble is not None else "",
                   "-lang-embed" if args.language_mode == "embed" else ""])
    out = args.out or os.path.join("eval_out", f"{args.suite}-{name}{tag}")
    protocol = EvalProtocol(suite=args.suite, episodes_per_task=args.episodes, max_steps=args.max_steps, seed=args.seed,
                            tasks=tuple(args.tasks) if args.tasks else None, init_state_offset=args.init_state_offset)
    if args.threads is not None and args.threads < 1:
        print(f"--threads must be >= 1, got {args.threads}", file=sys.stderr)
        return 2
    from vega_eval.rollout import installed_suites, unknown_suite_message

    try:
        if args.suite not in installed_suites():
            raise ValueError(unknown_suite_message(args.suite))
        protocol.step_limit  # noqa: B018 - a suite without a standard limit needs --max-steps; say so before any work
    except ValueError as e:
        print(f"libero-eval: {e}", file=sys.stderr)
        return 2
    threads = args.threads or worker_threads(args.workers)
    factory = _PolicyFactory(args.policy, args.models_root, args.execute_steps, args.temporal_ensemble, threads,
                             args.language_encoder, args.language_mode)
    policy = factory()  # fail here, not in every worker, if the artifact or an option is bad
    t0 = time.monotonic()
    policy_id = "noop"
    if args.policy != "noop":
        from vega_ros.artifact import sha256_file
        from vega_ros.policy_runtime import POLICY_CARD

        policy_id = sha256_file(os.path.join(args.policy, POLICY_CARD))
        if args.execute_steps is not None or args.temporal_ensemble is not None:
            name += f" ({policy.execution})"
            policy_id += f" {policy.execution}"  # a journal of other run-time settings is not resumed
        if args.language_mode != "nearest":
            name += f" (language {args.language_mode})"
            policy_id += f" language={args.language_mode}"
    try:
        report = evaluate(protocol, factory, out, workers=args.workers,
                          videos=args.videos, title=f"{name} on {args.suite}", policy_id=policy_id)
    except MissingInitStates as e:
        print(f"libero-eval: {e}", file=sys.stderr)
        return 2
    print(report.to_markdown(f"{name} on {args.suite}"))
    print(f"[libero-eval] {len(report.episodes)} episodes in {time.monotonic() - t0:.0f} s; results in {out}/")
    if not report.episodes and report.unloadable:
        print(f"libero-eval: no task of {args.suite} could be evaluated ({len(report.unloadable)} named above; "
              "`libero-pro audit` lists what the package lacks)", file=sys.stderr)
        return 2
    return 0


def _libero_compare(args) -> int:
    from vega_eval.compare import comparison_markdown, load_pooled

    if args.names and len(args.names) != len(args.runs):
        print(f"--names has {len(args.names)} labels for {len(args.runs)} runs", file=sys.stderr)
        return 2
    if len(args.runs) < 2 or not 0 <= args.reference < len(args.runs):
        print("give at least two runs and a --reference among them", file=sys.stderr)
        return 2
    try:
        runs = [load_pooled(p, name)
                for p, name in zip(args.runs, args.names or [None] * len(args.runs))]
        text = comparison_markdown(runs, args.reference)
    except (OSError, ValueError) as e:
        print(f"libero-compare: {e}", file=sys.stderr)
        return 2
    print(text, end="")
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    if args.plot:
        from vega_eval.compare_plot import plot_comparison

        try:
            print(f"[libero-compare] chart in {plot_comparison(runs, args.plot)}")
        except (OSError, RuntimeError) as e:
            print(f"libero-compare: {e}", file=sys.stderr)
            return 2
    return 0


def _bringup(args) -> int:
    """Start the nodes, wait for Ctrl-C / SIGTERM / ``--duration`` / a node's exit, stop them all.
    Exit code 0 only if every node ran until stopped and then exited 0 itself."""
    from vega_ros.demo import CAMERA_NS, NodeProcess, config_path, stop_all
    from vega_ros.node_main import interrupts_as_keyboard_interrupt, uninterruptible

    params = os.path.abspath(args.params or config_path("perception.yaml"))
    procs = []
    if args.camera == "sim":
        cam_params = os.path.abspath(args.camera_params or config_path("sim_camera.yaml"))
        overrides = {"source": args.sim_source} if args.sim_source else {}
        procs.append(NodeProcess("vega_ros.sim_camera_node", "sim_camera", cam_params, params=overrides, remaps={
            "image": f"{CAMERA_NS}/image_raw", "camera_info": f"{CAMERA_NS}/camera_info",
            "ground_truth/depth": f"{CAMERA_NS}/ground_truth/depth", "ground_truth/pose": f"{CAMERA_NS}/ground_truth/pose"}))
        ns = CAMERA_NS
    else:
        ns = args.camera.rstrip("/")
    procs.append(NodeProcess("vega_ros.perception_node", "perception", params,
                             remaps={"image": f"{ns}/image_raw", "camera_info": f"{ns}/camera_info"}))
    interrupts_as_keyboard_interrupt()
    t0 = time.monotonic()
    rc = 0
    try:
        for p in procs:
            print("[bringup] " + " ".join(p.command()), flush=True)
            p.start()
        while all(p.alive() for p in procs):
            if args.duration and time.monotonic() - t0 > args.duration:
                break
            time.sleep(0.2)
        for p in procs:
            if not p.alive():
                print(f"[bringup] {p.name} exited by itself with {p.proc.returncode}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        with uninterruptible():
            stop_all(procs)
    for p in procs:
        if p.proc is not None and p.proc.returncode != 0:
            print(f"[bringup] {p.name} ended with exit code {p.proc.returncode}", file=sys.stderr)
            rc = 1
    print(f"[bringup] stopped after {time.monotonic() - t0:.0f} s", flush=True)
    return rc


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from vega_ros.demo import DemoInterrupted, run_demo

        try:
            summary = run_demo(args.out, args.duration, args.source, args.model, args.backend, args.rate)
        except DemoInterrupted as e:
            print(f"[demo] {e}", flush=True)
            return 0
        with open(os.path.join(args.out, "summary.md")) as f:
            print(f.read())
        return 0 if summary["frames"]["depth_published"] > 0 else 1
    if args.command == "bringup":
        return _bringup(args)
    if args.command == "libero-eval":
        return _libero_eval(args)
    if args.command == "libero-compare":
        return _libero_compare(args)
    if args.command == "libero-summary":
        return _libero_summary(args)
    if args.command == "libero-language":
        return _libero_language(args)
    if args.command == "models":
        from vega_ros.catalog import run_models_command

        return run_models_command(args.verify)
    if args.command in ("build-engine", "check-model"):
        from vega_ros.artifact import ArtifactError, default_model_dir, load_artifact

        model = getattr(args, "model", "") or default_model_dir()
        try:
            art = load_artifact(model)
        except ArtifactError as e:
            print(f"invalid artifact: {e}", file=sys.stderr)
            return 2
        print(f"{art.path}: {art.card.name} ok (input {art.card.input.width}x{art.card.input.height}, "
              f"N={art.card.tokens_n}, C={art.card.tokens_c}, S={art.card.frames_per_clip}, depth {art.card.depth_scale.value}, "
              f"random_init={art.card.random_init})")
        if args.command == "build-engine":
            from vega_ros.engine import create_engine

            engine, choice = create_engine(art, args.backend, trt_cache_dir=args.trt_cache_dir)
            print(choice.message())
            print(engine.describe())
            engine.close()
        return 0
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
