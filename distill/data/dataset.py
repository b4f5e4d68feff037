"""torch ``Dataset`` of probe samples from a folder written by ``distill.data.render``.

Each item picks one clip of the split and ``num_frames`` frames of it (sorted, at least
``min_gap`` apart, the first the reference) and returns :func:`distill.data.sample.make_sample`'s
dict. The choice is a pure function of (seed, epoch, index): call ``set_epoch`` for new frame
choices each epoch. Shards are opened lazily per worker and only the chosen clip is decompressed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from distill.data.augment import PhotometricAugment
from distill.data.sample import make_sample, sample_frame_ids
from distill.data.shards import ShardError, ShardReader, load_index


class LiberoClipDataset(Dataset):
    """Probe samples from rendered LIBERO clips.

    Args:
        root: the folder with ``index.json`` and the shards.
        split: ``train`` / ``val`` / ``test``.
        num_frames: S, frames per sample (the first is the reference).
        min_gap: smallest distance between chosen frames (in frames).
        samples_per_clip: items per clip per epoch (different frame choices).
        kinds: keep only clips of these path kinds (e.g. ``("orbit", "arc", "random_walk")``); None = all.
        augment: optional photometric augmentation (images only).
        seed: root seed of frame choices and augmentation.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        num_frames: int = 4,
        min_gap: int = 5,
        samples_per_clip: int = 1,
        kinds: tuple[str, ...] | None = None,
        augment: PhotometricAugment | None = None,
        seed: int = 0,
    ):
        self.root = Path(root)
        index = load_index(self.root)
        self.rows = [r for r in index["clips"] if r["split"] == split and (kinds is None or r["path_kind"] in kinds)]
        if not self.rows:
            raise ShardError(f"{self.root / 'index.json'}: no clips in split {split!r}" + (f" of kinds {kinds}" if kinds else ""))
        self.num_frames, self.min_gap = num_frames, min_gap
        self.samples_per_clip = samples_per_clip
        self.augment, self.seed = augment, seed
        self.epoch = 0
        sample_frame_ids(int(self.rows[0]["frames"]), num_frames, min_gap, np.random.default_rng(0))  # fail early if too short
        self._readers: dict[str, ShardReader] = {}

    def __len__(self) -> int:
        return len(self.rows) * self.samples_per_clip

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _reader(self, shard: str) -> ShardReader:
        if shard not in self._readers:
            self._readers[shard] = ShardReader(self.root / shard)
        return self._readers[shard]

    def __getitem__(self, idx: int) -> dict:
        if not 0 <= idx < len(self):
            raise IndexError(idx)
        row = self.rows[idx // self.samples_per_clip]
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        frames = sample_frame_ids(int(row["frames"]), self.num_frames, self.min_gap, rng)
        clip = self._reader(row["shard"]).clip(int(row["slot"]), frames)
        sample = make_sample(clip["rgb"], clip["depth"], clip["K"], clip["T_wc"], frames, row["clip_id"])
        if self.augment is not None:
            g = torch.Generator().manual_seed(int(rng.integers(2**62)))
            sample = self.augment(sample, g)
        return sample

    def __getstate__(self):  # open shards do not cross process boundaries (DataLoader workers)
        state = self.__dict__.copy()
        state["_readers"] = {}
        return state
