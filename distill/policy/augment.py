"""Random-shift augmentation for behaviour cloning (DrQ-style: pad with the edge, crop back).

Both visual streams get it, each with its own offset: the camera images (``[3, H, W]``, shift in
pixels) and the frozen 3D token grids (``[N, C]`` with N = side², shift in tokens), so neither
stream can memorise exact positions of the ~12 demonstrations per task. One token of a 14x14
grid is 1/14 of the image, about 9 px at LIBERO's 128².
"""

from __future__ import annotations

import torch


def shift_grid(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Translate ``[..., H, W]`` by (dy, dx) cells, repeating the edge into the uncovered border.

    ``out[..., i, j] = x[..., clamp(i - dy), clamp(j - dx)]``: a positive dy moves content down.
    """
    h, w = x.shape[-2:]
    rows = (torch.arange(h) - dy).clamp(0, h - 1)
    cols = (torch.arange(w) - dx).clamp(0, w - 1)
    return x[..., rows[:, None], cols[None, :]]


def _offsets(max_shift: int, generator: torch.Generator | None) -> tuple[int, int]:
    dy, dx = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator).tolist()
    return dy, dx


def random_shift_image(image: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``[C, H, W]`` image shifted by a uniform integer offset in [-max_shift, max_shift] per axis."""
    if max_shift <= 0:
        return image
    return shift_grid(image, *_offsets(max_shift, generator))


def random_shift_tokens(tokens: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``[N, C]`` tokens of a square grid (row-major, side² = N) shifted by whole tokens."""
    if max_shift <= 0:
        return tokens
    n, c = tokens.shape
    side = int(round(n ** 0.5))
    if side * side != n:
        raise ValueError(f"tokens must form a square grid, got N={n}")
    grid = tokens.T.reshape(c, side, side)
    return shift_grid(grid, *_offsets(max_shift, generator)).reshape(c, n).T
