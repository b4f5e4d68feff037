"""Depth of an exported artifact on held-out rendered clips: metric and median-scaled AbsRel / δ1.

    python -m distill.eval_depth --model models/vega-frame-v2 \\
        --eval libero_test=data/libero_sim:test --eval held_out_family=data/procedural:heldout_family \\
        --out docs/student/eval/vega-frame-v2 [--write-card]

The artifact runs as the robot runs it (ONNX Runtime through :mod:`vega_ros.engine`, 2 CPU threads
unless ``--threads``): format version 2 per frame (``frame.onnx`` with the frame's focal length),
format version 1 on clips of ``frames_per_clip`` frames (encoder + heads). Per clip,
``--frames-per-clip`` evenly spaced frames are scored; a set's numbers are the mean over its clips
with a 95 % bootstrap interval over clips. Depth is scored as predicted (``metric``: metres, no
scaling) and after a per-frame median scaling (``median_scaled``). Truth pixels are valid where the
renderer wrote depth (> 0, finite). Writes ``eval.json`` and one picture per set
(RGB | truth | prediction | |error| / truth, 0-50 %), and with ``--write-card`` the card's
``eval`` block: ``{set: {abs_rel, delta1, abs_rel_median_scaled, delta1_median_scaled, clips,
frames, data}, "command": ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from distill.data.shards import ShardError, ShardReader, load_index
from distill.metrics import depth_metrics

BOOTSTRAP_ROUNDS = 1000
PICTURE_FRAMES = 4
ERROR_TOP = 0.5
"""|error| / truth at which the error panel saturates."""


@dataclass(frozen=True)
class EvalSet:
    """One held-out set: a name for the tables, a rendered dataset and its split."""

    name: str
    root: Path
    split: str

    @classmethod
    def parse(cls, text: str) -> EvalSet:
        """``NAME=DIR:SPLIT`` (for example ``libero_test=data/libero_sim:test``)."""
        name, sep, rest = text.partition("=")
        root, sep2, split = rest.rpartition(":")
        if not sep or not sep2 or not name or not root or not split:
            raise ValueError(f"--eval {text!r}: want NAME=DIR:SPLIT, e.g. libero_test=data/libero_sim:test")
        return cls(name, Path(root), split)


def depth_colour(x: np.ndarray, top: float) -> np.ndarray:
    """``x [H, W]`` (0..top) -> ``[H, W, 3]`` uint8 RGB, turbo colour map."""
    import cv2

    scaled = np.clip(np.nan_to_num(x) / max(top, 1e-6) * 255, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(scaled, cv2.COLORMAP_TURBO)[..., ::-1]


def depth_picture_row(rgb: np.ndarray, gt: np.ndarray, pred: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """RGB | truth | prediction (the truth's colour scale, 99th percentile) | |error| / truth (0-50 %).

    ``rgb [H, W, 3]`` uint8, ``gt`` / ``pred [H, W]`` metres, ``valid [H, W]`` bool -> ``[H, 4W, 3]`` uint8.
    """
    top = float(np.percentile(gt[valid], 99)) if valid.any() else 1.0
    err = np.where(valid, np.abs(pred - gt) / np.maximum(gt, 1e-6), 0.0)
    return np.concatenate([rgb, depth_colour(gt, top), depth_colour(pred, top), depth_colour(err, ERROR_TOP)], axis=1)


class ArtifactDepth:
    """Depth of an exported artifact for the frames of one clip, run through the robot's engine."""

    def __init__(self, model_dir: str, threads: int = 2):
        from vega_ros.engine import create_engine

        self.engine, _ = create_engine(model_dir, "onnxruntime-cpu", intra_op_threads=threads, inter_op_threads=1)
        self.card = self.engine.card
        self.hw = self.engine.input_hw

    def __call__(self, rgb: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``rgb [S, H, W, 3]`` uint8, ``K [S, 3, 3]`` pixels -> ``(depth [S, h, w] metres, K [S, 3, 3])``
        at the model's input size ``h x w`` (the images are resized, the intrinsics follow)."""
        import cv2

        from vega_ros.geometry import resize_intrinsics

        h, w = self.hw
        src_wh = (rgb.shape[2], rgb.shape[1])
        if (rgb.shape[1], rgb.shape[2]) != (h, w):
            rgb = np.stack([cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA) for im in rgb])
            K = np.stack([resize_intrinsics(k, src_wh, (w, h)) for k in K])
        image = np.ascontiguousarray(rgb.transpose(0, 3, 1, 2), np.float32) / 255.0
        if self.engine.per_frame:
            depth = np.concatenate([self.engine.run_frame(image[i:i + 1], K[i:i + 1, 1, 1].astype(np.float32)).depth
                                    for i in range(len(image))])
            return depth, K
        s = self.card.frames_per_clip
        depth = []
        for start in range(0, len(image), s):
            chunk = image[start:start + s]
            n = len(chunk)
            if n < s:  # the last clip is filled with its last frame; only its own frames are kept
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], s - n, axis=0)])
            tokens = np.stack([self.engine.encode(chunk[i:i + 1])[0] for i in range(s)])[None]
            depth.append(self.engine.run_heads(tokens).depth[0, :n])
        return np.concatenate(depth), K

    def close(self) -> None:
        self.engine.close()


def _resize_truth(depth: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of ``depth [S, H, W]`` (no averaging across depth edges or holes)."""
    import cv2

    if depth.shape[1:] == tuple(hw):
        return depth
    return np.stack([cv2.resize(d, (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST) for d in depth])


def bootstrap_interval(values: np.ndarray, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the mean of ``values [N]`` (NaN, NaN for N < 2)."""
    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), (rounds, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def evaluate_set(model: ArtifactDepth, eval_set: EvalSet, frames_per_clip: int = 4, max_clips: int | None = None,
                 picture: str | None = None, progress: bool = True) -> dict:
    """Score ``model`` on ``eval_set``; returns the set's summary (and writes ``picture`` if given).

    Raises :class:`ShardError` naming the file when a shard is corrupt; a clip without one valid
    truth pixel in its scored frames is skipped and counted (``skipped_empty``).
    """
    import cv2
    from tqdm import tqdm

    rows = [r for r in load_index(eval_set.root)["clips"] if r["split"] == eval_set.split]
    if not rows:
        raise ShardError(f"{eval_set.root / 'index.json'}: no clips in split {eval_set.split!r}")
    rows = rows[:max_clips] if max_clips else rows
    per_clip: dict[str, list[float]] = {k: [] for k in ("abs_rel", "delta1", "abs_rel_median_scaled", "delta1_median_scaled")}
    skipped = frames = 0
    shown: list[np.ndarray] = []
    readers: dict[str, ShardReader] = {}
    try:
        for i, r in enumerate(tqdm(rows, desc=f"eval {eval_set.name}", unit="clip", disable=not progress)):
            reader = readers.setdefault(r["shard"], ShardReader(eval_set.root / r["shard"]))
            clip = reader.clip(int(r["slot"]))
            t = clip["rgb"].shape[0]
            pick = np.unique(np.linspace(0, t - 1, min(frames_per_clip, t)).round().astype(int))
            pred, _ = model(clip["rgb"][pick], clip["K"][pick])
            gt = _resize_truth(clip["depth"][pick], pred.shape[1:])
            valid = np.isfinite(gt) & (gt > 0)
            if not valid.any():
                skipped += 1
                continue
            metric = depth_metrics(pred, gt, valid, median_scale=False)
            scaled = depth_metrics(pred, gt, valid, median_scale=True)
            per_clip["abs_rel"].append(metric["abs_rel"])
            per_clip["delta1"].append(metric["delta1"])
            per_clip["abs_rel_median_scaled"].append(scaled["abs_rel"])
            per_clip["delta1_median_scaled"].append(scaled["delta1"])
            frames += len(pick)
            if picture and len(shown) < PICTURE_FRAMES and i % max(1, len(rows) // PICTURE_FRAMES) == 0:
                h, w = pred.shape[1:]
                rgb = cv2.resize(clip["rgb"][pick[0]], (w, h), interpolation=cv2.INTER_AREA)
                shown.append(depth_picture_row(rgb, gt[0], pred[0], valid[0]))
    finally:
        for reader in readers.values():
            reader.close()
    if not per_clip["abs_rel"]:
        raise ShardError(f"{eval_set.root}: split {eval_set.split!r} has no clip with valid depth ({skipped} skipped)")
    out: dict = {"data": f"{eval_set.root}:{eval_set.split}", "clips": len(per_clip["abs_rel"]), "frames": frames,
                 "skipped_empty": skipped}
    for key, values in per_clip.items():
        out[key] = round(float(np.mean(values)), 4)
        out[f"{key}_ci95"] = [round(v, 4) for v in bootstrap_interval(np.asarray(values))]
    if picture and shown:
        os.makedirs(os.path.dirname(picture) or ".", exist_ok=True)
        cv2.imwrite(picture, np.concatenate(shown, axis=0)[..., ::-1])
    return out


CARD_KEYS = ("abs_rel", "delta1", "abs_rel_median_scaled", "delta1_median_scaled", "clips", "frames", "data")


def write_card_eval(model_dir: str, results: dict[str, dict] | None = None, command: str | None = None,
                    frame_ms_cpu2: dict | None = None) -> None:
    """Update the card's ``eval`` block: ``results`` per set (with the ``command`` that measured them)
    and/or ``frame_ms_cpu2`` (``{"value", "command", "note"}``); sets and keys not given are kept."""
    from vega_ros.artifact import read_card, write_card

    card = read_card(model_dir)
    block = dict(card.eval)
    for name, r in (results or {}).items():
        block[name] = {k: r[k] for k in CARD_KEYS}
    if results:
        block["command"] = command
    if frame_ms_cpu2 is not None:
        block["frame_ms_cpu2"] = frame_ms_cpu2
    write_card(model_dir, replace(card, eval=block))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--model", required=True, help="artifact directory (format version 1 or 2)")
    p.add_argument("--eval", action="append", required=True, type=EvalSet.parse, metavar="NAME=DIR:SPLIT",
                   help="a held-out set (repeatable)")
    p.add_argument("--frames-per-clip", type=int, default=4, help="evenly spaced frames scored per clip")
    p.add_argument("--max-clips", type=int, default=None, help="score only the first N clips of each set")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    p.add_argument("--out", default=None, help="folder for eval.json and the pictures (default: no files)")
    p.add_argument("--write-card", action="store_true", help="write the results into the artifact's card.json 'eval' block")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.frames_per_clip < 1:
        p.error("--frames-per-clip must be >= 1")
    for s in args.eval:
        if not (s.root / "index.json").is_file():
            p.error(f"--eval {s.name}: {s.root} is not a rendered dataset (no index.json); render it first "
                    "(python -m distill.data.render / python -m distill.data.procedural.render)")
    command = "python -m distill.eval_depth " + shlex.join(a for a in (argv if argv is not None else sys.argv[1:]))
    model = ArtifactDepth(args.model, threads=args.threads)
    results = {}
    try:
        for s in args.eval:
            picture = os.path.join(args.out, f"{s.name}.png") if args.out else None
            results[s.name] = evaluate_set(model, s, args.frames_per_clip, args.max_clips, picture, not args.no_progress)
            r = results[s.name]
            print(f"[eval] {model.card.name} on {s.name} ({r['clips']} clips, {r['frames']} frames): "
                  f"metric AbsRel {r['abs_rel']:.3f} δ1 {r['delta1']:.3f} | median-scaled AbsRel "
                  f"{r['abs_rel_median_scaled']:.3f} δ1 {r['delta1_median_scaled']:.3f}", flush=True)
    finally:
        model.close()
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "eval.json"), "w") as f:
            json.dump({"model": model.card.name, "command": command, "sets": results}, f, indent=2)
            f.write("\n")
    if args.write_card:
        write_card_eval(args.model, results, command)
        print(f"[eval] wrote the eval block of {os.path.join(args.model, 'card.json')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
