"""Validate a rendered folder: every shard readable, and depth consistent across views.

    python -m distill.data.check DIR [--max-clips N] [--preview PNG]

Every shard is opened and CRC-checked (a corrupt or truncated one raises ``ShardError`` naming
it). For up to ``--max-clips`` clips (evenly spread), frame i's depth is reprojected into frame j
(``distill.data.reproject``); the report gives the median and p90 of |disagreement| on the visible
overlap, pooled over static clips (the index's ``static`` flag, else the free-camera kinds: nothing moves) and per path kind (where
the arm moves, clips are reported but not in the headline). A preview grid
(RGB, colour-mapped depth, fused top view) is written as PNG. ``DIR/check.json`` keeps the numbers.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np

from distill.data.preview import preview_grid
from distill.data.reproject import frame_pairs, reprojection_residuals
from distill.data.shards import ShardError, ShardReader, atomic_write_json, load_index

TARGET_MEDIAN_M = 0.005


def verify_shard(path: Path) -> None:
    """Open a shard and CRC-check every member; raises ``ShardError`` naming the file."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, zlib.error) as e:
        raise ShardError(f"corrupt or truncated shard {path}: {type(e).__name__}: {e}") from e
    if bad is not None:
        raise ShardError(f"corrupt shard {path}: CRC mismatch in member {bad}")
    ShardReader(path).close()


def _stats(r: np.ndarray) -> dict:
    if r.size == 0:
        return {"n": 0, "median_mm": None, "p90_mm": None}
    a = np.abs(r)
    return {"n": int(a.size), "median_mm": float(np.median(a) * 1e3), "p90_mm": float(np.percentile(a, 90) * 1e3)}


def clip_residuals(clip: dict, max_points: int = 20000, seed: int = 0) -> np.ndarray:
    """Signed residuals (metres) of all validator frame pairs of one clip (subsampled to ``max_points``)."""
    rs = [reprojection_residuals(clip["depth"][i], clip["K"][i], clip["T_wc"][i], clip["depth"][j], clip["K"][j], clip["T_wc"][j])
          for i, j in frame_pairs(len(clip["depth"]))]
    r = np.concatenate(rs) if rs else np.zeros(0)
    if r.size > max_points:
        r = np.random.default_rng(seed).choice(r, max_points, replace=False)
    return r


def rows_from_shards(root: Path) -> list[dict]:
    """Index rows read from the shards' headers (for a run still in progress: no ``index.json`` yet)."""
    rows = []
    for p in sorted(root.glob("*/*.npz")):
        with ShardReader(p) as r:
            rows += [{**m, "shard": str(p.relative_to(root)), "slot": k} for k, m in enumerate(r.metas)]
    if not rows:
        raise ShardError(f"{root}: no index.json and no shards")
    return rows


def check(root: str | Path, max_clips: int | None = None, preview: str | Path | None = None, verbose: bool = True) -> dict:
    """Validate ``root``; returns the report dict (also written to ``root/check.json``).

    Without ``index.json`` (a render still running or stopped), the shards present are checked.
    """
    root = Path(root)
    complete = (root / "index.json").exists()
    rows = load_index(root)["clips"] if complete else rows_from_shards(root)
    shard_names = sorted({r["shard"] for r in rows})
    for name in shard_names:
        p = root / name
        if not p.is_file():
            raise ShardError(f"missing shard {p} (listed in {root / 'index.json'})")
        verify_shard(p)
    picks = range(len(rows)) if not max_clips or max_clips >= len(rows) else np.linspace(0, len(rows) - 1, max_clips).round().astype(int)
    by_kind: dict[str, list[np.ndarray]] = {}
    per_clip = []
    preview_clips: dict[str, dict] = {}
    for n, k in enumerate(picks):
        row = rows[int(k)]
        with ShardReader(root / row["shard"]) as reader:
            clip = reader.clip(row["slot"])
        r = clip_residuals(clip, seed=n)
        by_kind.setdefault(row["path_kind"], []).append(r)
        per_clip.append({"clip_id": row["clip_id"], "path_kind": row["path_kind"], **_stats(r)})
        if row["path_kind"] not in preview_clips and len(preview_clips) < 4:
            preview_clips[row["path_kind"]] = clip
    static_kinds = {r["path_kind"] for r in rows if r.get("static", r["path_kind"] in ("orbit", "arc", "random_walk"))}
    static = [r for kind, rs in by_kind.items() for r in rs if kind in static_kinds]
    report = {
        "root": str(root),
        "clips_in_index": len(rows),
        "index_complete": complete,
        "shards_verified": len(shard_names),
        "clips_checked": len(per_clip),
        "static": _stats(np.concatenate(static) if static else np.zeros(0)),
        "by_kind": {kind: _stats(np.concatenate(rs)) for kind, rs in sorted(by_kind.items())},
        "target_median_mm": TARGET_MEDIAN_M * 1e3,
        "occlusion_m": 0.02,
        "per_clip": per_clip,
    }
    s = report["static"]
    report["pass"] = s["median_mm"] is not None and s["median_mm"] < TARGET_MEDIAN_M * 1e3
    atomic_write_json(root / "check.json", report)  # note: a running render does not touch this file
    if preview is not None and preview_clips:
        grid = preview_grid(list(preview_clips.values()))
        Path(preview).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(preview), grid[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
        report["preview"] = str(preview)
    if verbose:
        partial = "" if complete else " (no index.json: partial render, shards found so far)"
        print(f"{root}: {len(shard_names)} shards verified, {len(per_clip)} of {len(rows)} clips reprojected{partial}")
        print(f"{'kind':<12} {'points':>9} {'median mm':>10} {'p90 mm':>8}")
        for kind, st in [("static", s)] + list(report["by_kind"].items()):
            med = "-" if st["median_mm"] is None else f"{st['median_mm']:.3f}"
            p90 = "-" if st["p90_mm"] is None else f"{st['p90_mm']:.3f}"
            print(f"{kind:<12} {st['n']:>9} {med:>10} {p90:>8}")
        print(("PASS" if report["pass"] else "FAIL") + f": static median < {TARGET_MEDIAN_M * 1e3:.0f} mm")
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", help="folder written by distill.data.render")
    ap.add_argument("--max-clips", type=int, default=None, help="reproject at most this many clips (all shards are still verified)")
    ap.add_argument("--preview", default=None, help="preview PNG path (default ROOT/preview.png)")
    args = ap.parse_args(argv)
    try:
        report = check(args.root, args.max_clips, args.preview or Path(args.root) / "preview.png")
    except ShardError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
