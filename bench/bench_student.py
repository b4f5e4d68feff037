"""Benchmark: per-frame model cost of the v1 student (as the node runs it) vs the v2 per-frame graph.

ONNX Runtime CPU, ``intra_op_num_threads=--threads`` (inter 1), batch 1, 224 x 224 (each
artifact's card size), seeded random inputs (the graphs' cost does not depend on the content).
Rows, measured interleaved (one round runs every row once, so load from other processes falls on
all alike; medians over ``--rounds`` after ``--warmup``):

- ``v1 encoder``: ``encoder.onnx`` of ``--model-v1`` on one frame;
- ``v1 per frame``: the encoder on one frame, then ``heads.onnx`` on tokens ``[1, S, N, C]`` (the
  node runs both every frame);
- ``v2 fp32``: ``frame.onnx`` of ``--v2`` (default: a random-init export of the shipped
  architecture, ``python -m distill.export --random-v2``) on one frame + its focal length;
- ``v2 fp16-weights``: the same graph with its weights stored as float16 (compute stays float32);
- ``v2 int8-dynamic`` / ``v2 int8-static``: ``onnxruntime.quantization`` (dynamic: int8 weights,
  activations quantised on the fly; static: QDQ, activations calibrated on ``--calib`` random frames).

Accuracy columns compare each v2 variant's depth with v2 fp32 on ``--eval`` other random frames:
median ``|Δd| / d`` and max ``|Δd|`` in metres. With the random-init default they say how much
the variant changes the graph's arithmetic, not how good a trained model stays; pass a trained
``--v2`` for that.

    .venv/bin/python bench/bench_student.py [--model-v1 models/vega-sim-vit-ti] [--v2 DIR] [--threads 2] [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from vega_ros import artifact as art  # noqa: E402
from vega_ros.contract import ENCODER_INPUT, FRAME_FOCAL, FRAME_IMAGE, FRAME_OUTPUTS, HEADS_INPUT, TOKENS  # noqa: E402


def _session(path: str, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def _timed(fn: Callable[[], object]) -> Callable[[], float]:
    def once() -> float:
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3
    return once


def v1_runners(model_dir: str, threads: int, rng: np.random.Generator) -> dict[str, Callable[[], float]]:
    a = art.load_artifact(model_dir)
    c = a.card
    enc, heads = _session(a.encoder_path, threads), _session(a.heads_path, threads)
    image = rng.random((1, 3, c.input.height, c.input.width), dtype=np.float32)
    history = rng.standard_normal((1, c.frames_per_clip - 1, c.tokens_n, c.tokens_c)).astype(np.float32)

    def per_frame() -> None:
        tokens = enc.run([TOKENS], {ENCODER_INPUT: image})[0]
        heads.run(None, {HEADS_INPUT: np.concatenate([history, tokens[:, None]], axis=1)})

    return {"v1 encoder": _timed(lambda: enc.run([TOKENS], {ENCODER_INPUT: image})), "v1 per frame": _timed(per_frame)}


def export_random_v2(out_dir: str) -> str:
    """A random-init v2 artifact of the shipped architecture (what ``--random-v2`` of distill.export writes)."""
    from distill.export import export_artifact_v2
    from distill.nets.models import build_frame_student, frame_card_fields

    model = build_frame_student("cpu", seed=0).eval()
    fields = frame_card_fields(model)
    fields["training"] = {**fields.get("training", {}), "random_init": True}
    export_artifact_v2(model, out_dir, name="vega-frame-v2-random", card_fields=fields)
    return out_dir


class _Calibration:
    """``onnxruntime.quantization.CalibrationDataReader`` over seeded random frames."""

    def __init__(self, frames: list[dict[str, np.ndarray]]):
        self.frames = iter(frames)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.frames, None)


def v2_variants(v2_dir: str, work: str, calib: list[dict[str, np.ndarray]]) -> dict[str, str]:
    """Variant name -> frame.onnx path: fp32, fp16-weights, int8-dynamic, int8-static."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    from distill.export import _store_weights_fp16

    src = os.path.join(v2_dir, art.FRAME_FILE)
    paths = {"v2 fp32": src}
    fp16 = os.path.join(work, "frame_fp16.onnx")
    shutil.copy(src, fp16)
    _store_weights_fp16(fp16)
    paths["v2 fp16-weights"] = fp16
    dyn = os.path.join(work, "frame_int8_dynamic.onnx")
    quantize_dynamic(src, dyn, weight_type=QuantType.QInt8)
    paths["v2 int8-dynamic"] = dyn
    static = os.path.join(work, "frame_int8_static.onnx")
    quantize_static(src, static, _Calibration(calib), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    paths["v2 int8-static"] = static
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model-v1", default=os.path.join(ROOT, "models", "vega-sim-vit-ti"))
    p.add_argument("--v2", default=None, help="a v2 artifact directory (default: export a random-init one)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--calib", type=int, default=8)
    p.add_argument("--eval", type=int, default=4)
    p.add_argument("--no-int8", action="store_true", help="skip the quantised variants")
    p.add_argument("--write-card", action="store_true",
                   help="write the v2 fp32 median into the --v2 artifact's card (eval.frame_ms_cpu2)")
    args = p.parse_args(argv)
    if args.write_card and args.v2 is None:
        p.error("--write-card needs --v2 (the artifact whose card gets the number)")

    import logging

    import onnxruntime as ort
    import torch

    torch.set_num_threads(1)
    ort.set_default_logger_severity(3)
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization's advice
    rng = np.random.default_rng(0)
    work = tempfile.mkdtemp(prefix="bench_student.")
    try:
        v2_dir = args.v2 or export_random_v2(os.path.join(work, "v2"))
        card = art.load_artifact(v2_dir).card
        h, w = card.input.height, card.input.width
        f_c = card.canonical_focal_px

        def frame_inputs(r: np.random.Generator) -> dict[str, np.ndarray]:
            return {FRAME_IMAGE: r.random((1, 3, h, w), dtype=np.float32), FRAME_FOCAL: np.array([f_c], np.float32)}

        calib = [frame_inputs(np.random.default_rng(100 + i)) for i in range(args.calib)]
        evals = [frame_inputs(np.random.default_rng(200 + i)) for i in range(args.eval)]
        paths = {"v2 fp32": os.path.join(v2_dir, art.FRAME_FILE)} if args.no_int8 else v2_variants(v2_dir, work, calib)
        if args.no_int8:
            from distill.export import _store_weights_fp16

            paths["v2 fp16-weights"] = os.path.join(work, "frame_fp16.onnx")
            shutil.copy(paths["v2 fp32"], paths["v2 fp16-weights"])
            _store_weights_fp16(paths["v2 fp16-weights"])

        runners = v1_runners(args.model_v1, args.threads, rng)
        sessions = {name: _session(path, args.threads) for name, path in paths.items()}
        one = frame_inputs(rng)
        for name, sess in sessions.items():
            runners[name] = _timed(lambda s=sess: s.run(None, one))

        accuracy: dict[str, tuple[float, float]] = {}
        ref = [sessions["v2 fp32"].run([FRAME_OUTPUTS[0]], x)[0] for x in evals]
        for name, sess in sessions.items():
            got = [sess.run([FRAME_OUTPUTS[0]], x)[0] for x in evals]
            rel = np.concatenate([(np.abs(g - r) / np.maximum(r, 1e-6)).ravel() for g, r in zip(got, ref)])
            accuracy[name] = (float(np.median(rel)), float(max(np.abs(g - r).max() for g, r in zip(got, ref))))

        times: dict[str, list[float]] = {k: [] for k in runners}
        for i in range(args.warmup + args.rounds):
            for name, run in runners.items():
                ms = run()
                if i >= args.warmup:
                    times[name].append(ms)

        base = statistics.median(times["v1 per frame"])
        sizes = {name: os.path.getsize(path) / 1e6 for name, path in paths.items()}
        print(f"per-frame cost, ONNX Runtime CPU, {args.threads} intra-op threads, batch 1, {h}x{w}; "
              f"{args.rounds} interleaved rounds after {args.warmup} warm-up; v1 = {os.path.relpath(args.model_v1, ROOT)}, "
              f"v2 = {'random-init export of the shipped architecture' if args.v2 is None else args.v2}")
        print(f"{'graph':<18} {'median ms':>10} {'p90 ms':>8} {'v1/frame ÷':>12} {'MB':>7} {'med |Δd|/d':>11} {'max |Δd| m':>11}")
        for name, ts in times.items():
            med, p90 = statistics.median(ts), float(np.percentile(ts, 90))
            mb = f"{sizes[name]:7.1f}" if name in sizes else " " * 7
            acc = f"{accuracy[name][0]:11.2e} {accuracy[name][1]:11.2e}" if name in accuracy else ""
            print(f"{name:<18} {med:10.1f} {p90:8.1f} {base / med:11.2f}x {mb} {acc}")
        if args.write_card:
            from distill.eval_depth import write_card_eval

            command = "python bench/bench_student.py " + " ".join(argv if argv is not None else sys.argv[1:])
            write_card_eval(args.v2, frame_ms_cpu2={
                "value": round(statistics.median(times["v2 fp32"]), 1), "command": command,
                "note": f"frame.onnx fp32, ONNX Runtime CPU, {args.threads} intra-op threads, batch 1, median of "
                        f"{args.rounds} interleaved rounds after {args.warmup} warm-up, on the machine that ran the command"})
            print(f"wrote eval.frame_ms_cpu2 into {os.path.join(args.v2, art.CARD_FILE)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
