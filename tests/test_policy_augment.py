"""Random-shift augmentation of the BC inputs (distill.policy.augment)."""

from __future__ import annotations

import pytest
import torch

from distill.policy.augment import random_shift_image, random_shift_tokens, shift_grid


def test_shift_grid_known_answer():
    x = torch.arange(9.0).reshape(3, 3)
    # down by 1, left by 1: row 0 repeats the old row 0, the last column repeats the old last column
    expected = torch.tensor([[1.0, 2.0, 2.0],
                             [1.0, 2.0, 2.0],
                             [4.0, 5.0, 5.0]])
    assert torch.equal(shift_grid(x, 1, -1), expected)
    assert torch.equal(shift_grid(x, 0, 0), x)


def test_shift_grid_keeps_leading_dims():
    x = torch.rand(2, 3, 5, 7)
    out = shift_grid(x, 2, 3)
    assert out.shape == x.shape
    assert torch.equal(out[..., 2:, 3:], x[..., :-2, :-3])


def _matching_offset(out: torch.Tensor, grid: torch.Tensor, max_shift: int) -> list[tuple[int, int]]:
    r = range(-max_shift, max_shift + 1)
    return [(dy, dx) for dy in r for dx in r if torch.equal(shift_grid(grid, dy, dx), out)]


def test_random_shift_image_is_a_bounded_translation():
    image = torch.rand(3, 16, 16)
    g = torch.Generator().manual_seed(0)
    offsets = set()
    for _ in range(20):
        out = random_shift_image(image, 2, generator=g)
        found = _matching_offset(out, image, 2)
        assert len(found) == 1
        offsets.add(found[0])
    assert len(offsets) > 3  # the offsets vary
    assert random_shift_image(image, 0) is image


def test_random_shift_tokens_moves_the_grid_not_the_channels():
    side, c = 4, 5
    tokens = torch.rand(side * side, c)
    out = random_shift_tokens(tokens, 1, generator=torch.Generator().manual_seed(3))
    assert out.shape == tokens.shape
    grid = tokens.T.reshape(c, side, side)
    assert len(_matching_offset(out.T.reshape(c, side, side), grid, 1)) == 1
    # every output token is one of the input tokens, whole (channels travel together)
    assert all(any(torch.equal(row, t) for t in tokens) for row in out)


def test_random_shift_tokens_needs_a_square_grid():
    with pytest.raises(ValueError, match="square grid"):
        random_shift_tokens(torch.rand(12, 4), 1)
