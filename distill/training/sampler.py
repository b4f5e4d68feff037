"""A batch order that is a pure function of (seed, step), so training resumes mid-epoch exactly."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class StepBatchSampler(Sampler[list[int]]):
    """Yields this rank's share of the global batch for steps ``start_step .. max_steps - 1``.

    Epoch e is the permutation ``default_rng(seed + e)`` of the dataset; the global batch of
    step s is the next ``batch_size * world_size`` indices (wrapping into the next epoch), and
    rank r takes the r-th slice of it. Resuming at step s therefore sees exactly the batches an
    uninterrupted run would have seen.
    """

    def __init__(self, dataset_len: int, batch_size: int, max_steps: int, seed: int = 0,
                 start_step: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if dataset_len <= 0:
            raise ValueError("the dataset is empty")
        self.n, self.batch, self.max_steps, self.seed = dataset_len, batch_size, max_steps, seed
        self.start_step, self.rank, self.world = start_step, rank, world_size

    def __len__(self) -> int:
        return max(0, self.max_steps - self.start_step)

    def global_indices(self, step: int) -> np.ndarray:
        """The ``batch_size * world_size`` dataset indices of global step ``step``."""
        per_step = self.batch * self.world
        first = step * per_step
        out = np.empty(per_step, dtype=np.int64)
        for k in range(per_step):
            epoch, pos = divmod(first + k, self.n)
            out[k] = self._perm(epoch)[pos]
        return out

    def _perm(self, epoch: int) -> np.ndarray:
        if getattr(self, "_cached_epoch", None) != epoch:
            self._cached_perm = np.random.default_rng(self.seed + epoch).permutation(self.n)
            self._cached_epoch = epoch
        return self._cached_perm

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start_step, self.max_steps):
            idx = self.global_indices(step)
            yield idx[self.rank * self.batch:(self.rank + 1) * self.batch].tolist()
