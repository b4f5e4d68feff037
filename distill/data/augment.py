"""Photometric augmentation of a sample's images; geometry (depth, K, poses, points) is never touched."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PhotometricAugment:
    """Random brightness, contrast, saturation, per-channel gain and Gaussian noise on ``images``.

    One draw per frame (``per_frame=True``) or one per sample. Images stay in [0, 1]. Applied to a
    sample dict, it returns a new dict whose ``images`` changed and every other value is the same object.
    """

    brightness: float = 0.2  # multiply by 1 + U(-b, b)
    contrast: float = 0.2  # blend with the frame mean by 1 + U(-c, c)
    saturation: float = 0.2  # blend with grey by 1 + U(-s, s)
    channel_gain: float = 0.05  # per-channel gain 1 + U(-g, g)
    noise_std: float = 0.01
    per_frame: bool = True

    def images(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment ``[S, 3, H, W]`` float32 in [0, 1]; returns a new tensor of the same shape."""
        S = images.shape[0]
        n = S if self.per_frame else 1

        def u(scale: float, *shape: int) -> torch.Tensor:
            return 1.0 + scale * (2.0 * torch.rand((n, *shape), generator=generator) - 1.0)

        x = images * u(self.brightness, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * u(self.contrast, 1, 1, 1) + mean
        grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
        x = (x - grey) * u(self.saturation, 1, 1, 1) + grey
        x = x * u(self.channel_gain, 3, 1, 1)
        if self.noise_std > 0:
            x = x + self.noise_std * torch.randn(x.shape, generator=generator)
        return x.clamp(0.0, 1.0).to(images.dtype)

    def __call__(self, sample: dict, generator: torch.Generator | None = None) -> dict:
        return {**sample, "images": self.images(sample["images"], generator)}
