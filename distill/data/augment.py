"""Photometric augmentation of a sample's images; geometry (depth, K, poses, points) is never touched."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# RGB <-> YIQ (NTSC): Y is luma, (I, Q) the chroma plane a hue rotation turns
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


@dataclass(frozen=True)
class PhotometricAugment:
    """Random brightness, contrast, saturation, hue, per-channel gain, gamma, grey, channel order,
    blur and Gaussian noise on ``images``.

    One draw per frame (``per_frame=True``) or one per sample. Images stay in [0, 1]. Applied to a
    sample dict, it returns a new dict whose ``images`` changed and every other value is the same object.
    The defaults are the mild jitter of the first recipes; the colour terms after ``channel_gain``
    (off by default, and drawing no random numbers while off, so earlier runs replay exactly) break
    the link between an object's colour or texture and its depth that a small student otherwise learns.
    """

    brightness: float = 0.2  # multiply by 1 + U(-b, b)
    contrast: float = 0.2  # blend with the frame mean by 1 + U(-c, c)
    saturation: float = 0.2  # blend with grey by 1 + U(-s, s)
    channel_gain: float = 0.05  # per-channel gain 1 + U(-g, g)
    noise_std: float = 0.01
    per_frame: bool = True
    hue: float = 0.0  # rotate the chroma (YIQ) plane by U(-h, h) half-turns (0.5: up to +-90 degrees)
    gamma: float = 0.0  # x ** (1 + U(-g, g))
    grayscale_p: float = 0.0  # probability that a frame is replaced by its luma
    channel_shuffle_p: float = 0.0  # probability that a frame's RGB channels are permuted at random
    blur_p: float = 0.0  # probability of a Gaussian blur of sigma U(0.3, blur_sigma_max) px
    blur_sigma_max: float = 1.5

    def __post_init__(self) -> None:
        for name in ("grayscale_p", "channel_shuffle_p", "blur_p"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"PhotometricAugment.{name} must be a probability in [0, 1], got {getattr(self, name)}")
        for name in ("brightness", "contrast", "saturation", "channel_gain", "noise_std", "hue", "gamma"):
            if getattr(self, name) < 0:
                raise ValueError(f"PhotometricAugment.{name} must be >= 0, got {getattr(self, name)}")
        if self.gamma >= 1.0:
            raise ValueError(f"PhotometricAugment.gamma must be < 1 (the exponent stays positive), got {self.gamma}")
        if self.blur_p > 0 and self.blur_sigma_max < 0.3:
            raise ValueError(f"PhotometricAugment.blur_sigma_max must be >= 0.3 px, got {self.blur_sigma_max}")

    def images(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment ``[S, 3, H, W]`` float32 in [0, 1]; returns a new tensor of the same shape."""
        S = images.shape[0]
        n = S if self.per_frame else 1

        def rand(*shape: int) -> torch.Tensor:
            return torch.rand((n, *shape), generator=generator)

        def u(scale: float, *shape: int) -> torch.Tensor:
            return 1.0 + scale * (2.0 * rand(*shape) - 1.0)

        x = images * u(self.brightness, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * u(self.contrast, 1, 1, 1) + mean
        grey = _luma(x)
        x = (x - grey) * u(self.saturation, 1, 1, 1) + grey
        if self.hue > 0:
            x = _rotate_hue(x, math.pi * self.hue * (2.0 * rand() - 1.0))
        x = x * u(self.channel_gain, 3, 1, 1)
        if self.gamma > 0:
            x = x.clamp(0.0, 1.0) ** u(self.gamma, 1, 1, 1)
        if self.grayscale_p > 0:
            x = torch.where(rand(1, 1, 1) < self.grayscale_p, _luma(x).expand_as(x), x)
        if self.channel_shuffle_p > 0:
            x = _shuffle_channels(x, rand() < self.channel_shuffle_p, generator)
        if self.blur_p > 0:
            x = _blur(x, rand() < self.blur_p, 0.3 + (self.blur_sigma_max - 0.3) * rand())
        if self.noise_std > 0:
            x = x + self.noise_std * torch.randn(x.shape, generator=generator)
        return x.clamp(0.0, 1.0).to(images.dtype)

    def __call__(self, sample: dict, generator: torch.Generator | None = None) -> dict:
        return {**sample, "images": self.images(sample["images"], generator)}


def _luma(x: torch.Tensor) -> torch.Tensor:
    """``[S, 1, H, W]`` Rec. 601 luma of ``x [S, 3, H, W]`` (the Y row of ``_RGB_TO_YIQ``)."""
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def _rotate_hue(x: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """``x [S, 3, H, W]`` with its chroma turned by ``angle [n]`` radians (n = S or 1); luma unchanged."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(c), torch.zeros_like(c)
    rot = torch.stack([torch.stack([one, zero, zero], -1), torch.stack([zero, c, -s], -1),
                       torch.stack([zero, s, c], -1)], -2)  # [n, 3, 3] acting on (Y, I, Q)
    m = _YIQ_TO_RGB.to(x.dtype) @ rot.to(x.dtype) @ _RGB_TO_YIQ.to(x.dtype)
    return torch.einsum("nij,sjhw->sihw", m, x) if len(m) == 1 else torch.einsum("sij,sjhw->sihw", m, x)


def _shuffle_channels(x: torch.Tensor, chosen: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """``x [S, 3, H, W]`` with the channels of the frames where ``chosen [n]`` permuted at random."""
    perms = torch.stack([torch.randperm(3, generator=generator) for _ in range(len(chosen))])
    perms = torch.where(chosen[:, None], perms, torch.arange(3))
    perms = perms.expand(len(x), 3) if len(perms) == 1 else perms
    return torch.gather(x, 1, perms[:, :, None, None].expand_as(x))


def _blur(x: torch.Tensor, chosen: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """``x [S, 3, H, W]`` where ``chosen [n]``: Gaussian-blurred with ``sigma [n]`` px (separable, 7 taps, reflect)."""
    t = torch.arange(-3, 4, dtype=x.dtype)
    k = torch.exp(-0.5 * (t[None] / sigma[:, None].to(x.dtype)) ** 2)
    k = torch.where(chosen[:, None], k / k.sum(1, keepdim=True), (t[None] == 0).to(x.dtype))  # [n, 7]
    k = k.expand(len(x), 7) if len(k) == 1 else k
    S, C, H, W = x.shape
    y = F.pad(x.reshape(1, S * C, H, W), (3, 3, 3, 3), mode="reflect")
    kh = k.repeat_interleave(C, 0)  # [S C, 7]
    y = F.conv2d(y, kh[:, None, None, :], groups=S * C)  # along W
    y = F.conv2d(y, kh[:, None, :, None], groups=S * C)  # along H
    return y.reshape(S, C, H, W)
