"""Preview of a rendered procedural folder: per clip, RGB and depth of three frames, split by split.

    python -m distill.data.procedural.preview DIR --out docs/data/procedural_preview.png --per-split 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from distill.data.preview import colorize_depth
from distill.data.shards import ShardReader, load_index


def preview(root: str | Path, per_split: int = 2, tile: int = 112) -> np.ndarray:
    """``[rows * tile, 6 * tile, 3]`` uint8 RGB: per clip, (RGB | depth) of frames 0, T/2, T-1 with a label."""
    root = Path(root)
    rows_by_split: dict[str, list[dict]] = {}
    for r in load_index(root)["clips"]:
        rows_by_split.setdefault(r["split"], []).append(r)
    out = []
    for split, rows in rows_by_split.items():
        picks = [rows[int(i)] for i in np.linspace(0, len(rows) - 1, min(per_split, len(rows))).round()]
        for row in picks:
            with ShardReader(root / row["shard"]) as rd:
                clip = rd.clip(row["slot"])
            T = len(clip["rgb"])
            tiles = []
            for f in (0, T // 2, T - 1):
                tiles += [clip["rgb"][f], colorize_depth(clip["depth"][f])]
            strip = np.concatenate([cv2.resize(t, (tile, tile), interpolation=cv2.INTER_AREA) for t in tiles], 1)
            label = f"{split} {row['scene_id']} {row['path_kind']} fov {2 * np.degrees(np.arctan(clip['K'][0, 1, 2] / clip['K'][0, 1, 1])):.0f}"
            cv2.putText(strip, label, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
            out.append(strip)
    return np.concatenate(out, 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root")
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-split", type=int, default=2)
    args = ap.parse_args(argv)
    grid = preview(args.root, args.per_split)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), grid[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"wrote {args.out} ({grid.shape[1]}x{grid.shape[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
