"""One data spec for every clip source: the probe's ``--data`` and training's ``data.root``.

    libero_sim:DIR | DIR      a dataset rendered by ``python -m distill.data.render`` (shards + index)
    co3d:DIR[:HxW]            a CO3Dv2 root (``<category>/frame_annotations.jgz``), frames fitted to HxW
    dl3dv:DIR[:HxW]           a DL3DV-10K root (``<scene>/transforms.json``), frames fitted to HxW; no depth
    synthetic:N[:HxW]         N analytic clips (:mod:`distill.data.synthetic`)

:func:`open_clips` returns the samples of one split as a sequence of dicts in the clip contract
(``distill.data.sample``: ``images [S, 3, H, W]`` in [0, 1], ``depth [S, H, W]`` metres (0 invalid),
``valid``, ``K [S, 3, 3]``, ``T_wc [S, 4, 4]``, ``points_ref [S, H, W, 3]``, ``frame_ids``, ``clip_id``).
Splits are by scene, never by frame: a rendered dataset records its split in its index; CO3Dv2 and
DL3DV scenes are assigned by :func:`scene_split`, a stable hash of the scene's name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
import torch

from distill.data.augment import PhotometricAugment

DEFAULT_HW = (224, 224)
"""Frame size of CO3Dv2 / DL3DV samples when the spec names none."""
TEST_PERCENT = 20
"""Share of CO3Dv2 / DL3DV scenes in the test split (by :func:`scene_split`)."""
SPLITS = ("train", "test")


class SourceKind(str, Enum):
    LIBERO_SIM = "libero_sim"
    CO3D = "co3d"
    DL3DV = "dl3dv"
    SYNTHETIC = "synthetic"


@dataclass(frozen=True)
class DataSpec:
    """A parsed data spec: the source kind, its directory (or clip count) and the frame size."""

    kind: SourceKind
    path: Path | None = None
    count: int | None = None
    size_hw: tuple[int, int] | None = None


_SIZE = re.compile(r"^(?P<rest>.*?)(?::(?P<h>\d+)x(?P<w>\d+))?$", re.IGNORECASE)


def parse_data_spec(spec: str) -> DataSpec:
    """Parse ``KIND:DIR[:HxW]``, ``synthetic:N[:HxW]`` or a plain directory (a rendered dataset).

    Raises ``ValueError`` naming the spec when the kind is unknown or a field is malformed.
    """
    if not spec:
        raise ValueError("empty data spec (want DIR, libero_sim:DIR, co3d:DIR, dl3dv:DIR or synthetic:N)")
    kind_text, sep, rest = spec.partition(":")
    if not sep or kind_text not in {k.value for k in SourceKind}:
        if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", kind_text) and not Path(kind_text).exists():
            raise ValueError(f"data spec {spec!r}: unknown source '{kind_text}' "
                             f"(choose from {', '.join(k.value for k in SourceKind)}, or a plain directory)")
        return DataSpec(SourceKind.LIBERO_SIM, path=Path(spec))
    kind = SourceKind(kind_text)
    m = _SIZE.match(rest)
    body = m["rest"]
    size = (int(m["h"]), int(m["w"])) if m["h"] else None
    if size is not None and kind is SourceKind.LIBERO_SIM:
        raise ValueError(f"data spec {spec!r}: a rendered dataset has its own frame size; drop ':{m['h']}x{m['w']}'")
    if kind is SourceKind.SYNTHETIC:
        if not body.isdigit() or int(body) < 1:
            raise ValueError(f"data spec {spec!r}: synthetic wants a clip count, e.g. synthetic:8 or synthetic:8:32x32")
        return DataSpec(kind, count=int(body), size_hw=size or (64, 64))
    if not body:
        raise ValueError(f"data spec {spec!r}: '{kind.value}:' needs a directory")
    return DataSpec(kind, path=Path(body), size_hw=size or (DEFAULT_HW if kind is not SourceKind.LIBERO_SIM else None))


def scene_split(scene: str, test_percent: int = TEST_PERCENT) -> str:
    """``"test"`` for about ``test_percent`` % of scene names, else ``"train"``: a stable hash of the
    name, so adding scenes never moves another scene between splits."""
    bucket = int(hashlib.sha1(scene.encode()).hexdigest()[:8], 16) % 100
    return "test" if bucket < test_percent else "train"


def open_clips(spec: str | DataSpec, split: str | None = "train", num_frames: int = 4, min_gap: int = 5,
               samples_per_clip: int = 1, seed: int = 0, augment: PhotometricAugment | None = None,
               kinds: tuple[str, ...] | None = None) -> Sequence[dict]:
    """The samples of ``split`` (``"train"``, ``"test"``; None = every scene of a CO3Dv2 / DL3DV root)
    as a sequence of contract dicts (no batch axis): ``samples_per_clip`` frame choices per clip,
    S = ``num_frames`` frames at least ``min_gap`` apart (analytic clips have one fixed choice of
    ``num_frames`` frames each). ``augment`` (photometric, images only) applies to every source;
    ``kinds`` (camera-path kinds) only to rendered datasets, which record them.
    """
    d = parse_data_spec(spec) if isinstance(spec, str) else spec
    if split is not None and split not in SPLITS and d.kind is not SourceKind.LIBERO_SIM:
        raise ValueError(f"split {split!r}: {d.kind.value} sources have the splits {SPLITS}")
    if d.kind is not SourceKind.LIBERO_SIM and kinds is not None:
        raise ValueError(f"data spec {spec}: camera-path kinds exist only in rendered datasets")
    if d.kind is SourceKind.SYNTHETIC:
        from distill.data.synthetic import SyntheticClips

        clips = SyntheticClips(d.count, split or "train", d.size_hw[0], d.size_hw[1], num_frames)
        return clips if augment is None else Augmented(clips, augment, seed)
    if not d.path.exists():
        raise FileNotFoundError(f"data spec {spec}: no such directory {d.path}")
    if d.kind is SourceKind.LIBERO_SIM:
        from distill.data.dataset import LiberoClipDataset

        return LiberoClipDataset(d.path, split=split or "train", num_frames=num_frames, min_gap=min_gap,
                                 samples_per_clip=samples_per_clip, kinds=kinds, augment=augment, seed=seed)
    if d.kind is SourceKind.CO3D:
        from distill.data.co3d import Co3dDataset

        clips = Co3dDataset(d.path, num_frames=num_frames, min_gap=min_gap, size_hw=d.size_hw, seed=seed,
                            split=split, samples_per_clip=samples_per_clip)
    else:
        from distill.data.dl3dv import Dl3dvDataset

        clips = Dl3dvDataset(d.path, num_frames=num_frames, min_gap=min_gap, size_hw=d.size_hw, seed=seed,
                             split=split, samples_per_clip=samples_per_clip)
    return clips if augment is None else Augmented(clips, augment, seed)


class Augmented(Sequence):
    """``clips`` with a photometric augmentation whose draw is a function of (seed, index)."""

    def __init__(self, clips: Sequence[dict], augment: PhotometricAugment, seed: int = 0) -> None:
        self.clips, self.augment, self.seed = clips, augment, seed

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, idx: int) -> dict:
        g = torch.Generator().manual_seed(int(np.random.default_rng([self.seed, idx]).integers(2**62)))
        return self.augment(self.clips[idx], g)
