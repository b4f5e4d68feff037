"""distill.data.augment: each colour term does what it says on images with known answers, the defaults
replay the first recipes' draws exactly, and a bad setting is refused."""

from __future__ import annotations

import math

import pytest
import torch

from distill.data.augment import PhotometricAugment, _rotate_hue

OFF = dict(brightness=0.0, contrast=0.0, saturation=0.0, channel_gain=0.0, noise_std=0.0)


def _luma(x: torch.Tensor) -> torch.Tensor:
    return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]


def _images(seed: int = 0, n: int = 4, size: int = 16) -> torch.Tensor:
    return torch.rand((n, 3, size, size), generator=torch.Generator().manual_seed(seed)) * 0.6 + 0.2


def test_the_defaults_draw_what_the_first_recipes_drew():
    x = _images()
    g = torch.Generator().manual_seed(5)
    b, c, s = (1.0 + 0.2 * (2 * torch.rand((4, 1, 1, 1), generator=g) - 1) for _ in range(3))
    gain = 1.0 + 0.05 * (2 * torch.rand((4, 3, 1, 1), generator=g) - 1)
    noise = 0.01 * torch.randn(x.shape, generator=g)
    y = x * b
    m = y.mean(dim=(1, 2, 3), keepdim=True)
    y = (y - m) * c + m
    grey = 0.299 * y[:, 0:1] + 0.587 * y[:, 1:2] + 0.114 * y[:, 2:3]
    y = ((y - grey) * s + grey) * gain + noise
    assert torch.allclose(PhotometricAugment().images(x, torch.Generator().manual_seed(5)), y.clamp(0, 1), atol=1e-6)


def test_a_hue_turn_keeps_luma_and_a_full_turn_is_the_identity():
    x = _images(1)
    for angle in (0.7, -2.0):
        y = _rotate_hue(x, torch.tensor([angle]))
        assert torch.allclose(_luma(y), _luma(x), atol=1e-5)
        assert not torch.allclose(y, x, atol=1e-2)
    assert torch.allclose(_rotate_hue(x, torch.tensor([2 * math.pi])), x, atol=1e-5)
    back = _rotate_hue(_rotate_hue(x, torch.tensor([1.1])), torch.tensor([-1.1]))
    assert torch.allclose(back, x, atol=1e-5)


def test_grey_frames_have_equal_channels_and_shuffled_frames_permute_them():
    x = _images(2)
    grey = PhotometricAugment(**OFF, grayscale_p=1.0).images(x, torch.Generator().manual_seed(0))
    assert torch.allclose(grey[:, 0], grey[:, 1]) and torch.allclose(grey[:, 1], grey[:, 2])
    assert torch.allclose(grey[:, 0], _luma(x), atol=1e-6)
    shuffled = PhotometricAugment(**OFF, channel_shuffle_p=1.0).images(x, torch.Generator().manual_seed(0))
    orders = []
    for k in range(len(x)):
        order = [int(torch.argmin(torch.stack([(shuffled[k, i] - x[k, j]).abs().max() for j in range(3)])))
                 for i in range(3)]
        assert sorted(order) == [0, 1, 2]
        assert torch.allclose(shuffled[k], x[k, order], atol=1e-6)
        orders.append(order)
    assert any(o != [0, 1, 2] for o in orders)
    assert torch.allclose(PhotometricAugment(**OFF, channel_shuffle_p=0.0, grayscale_p=0.0).images(x), x, atol=1e-6)


def test_blur_keeps_a_flat_image_and_smooths_an_edge():
    flat = torch.full((2, 3, 16, 16), 0.4)
    blur = PhotometricAugment(**OFF, blur_p=1.0, blur_sigma_max=1.5)
    assert torch.allclose(blur.images(flat, torch.Generator().manual_seed(0)), flat, atol=1e-6)
    edge = torch.zeros((1, 3, 16, 16))
    edge[..., 8:] = 1.0
    y = blur.images(edge, torch.Generator().manual_seed(0))
    assert 0.0 < y[0, 0, 5, 7] < 0.5 < y[0, 0, 5, 8] < 1.0  # the step is spread over its neighbours
    assert torch.allclose(y[..., 0], edge[..., 0]) and torch.allclose(y[..., -1], edge[..., -1])


def test_gamma_keeps_black_and_white_and_moves_the_middle():
    x = torch.tensor([0.0, 0.25, 1.0]).reshape(1, 1, 1, 3).expand(1, 3, 1, 3).contiguous()
    y = PhotometricAugment(**OFF, gamma=0.5).images(x, torch.Generator().manual_seed(3))
    assert y[0, 0, 0, 0] == 0.0 and y[0, 0, 0, 2] == 1.0 and abs(float(y[0, 0, 0, 1]) - 0.25) > 1e-3


@pytest.mark.parametrize("bad", [dict(grayscale_p=1.5), dict(blur_p=-0.1), dict(hue=-0.1), dict(gamma=1.0),
                                 dict(blur_p=0.5, blur_sigma_max=0.1)])
def test_bad_settings_are_refused(bad):
    with pytest.raises(ValueError, match="PhotometricAugment"):
        PhotometricAugment(**bad)
