"""Pictures of a rollout: an animated GIF, and a contact sheet (one PNG of evenly spaced frames) that
a markdown page or a review can show without playing anything."""

from __future__ import annotations

import numpy as np


def save_gif(frames: list[np.ndarray], path: str, fps: int = 20, every: int = 2) -> None:
    """Write ``[H, W, 3]`` uint8 frames as an animated GIF (every ``every``-th frame)."""
    from PIL import Image

    images = [Image.fromarray(f) for f in frames[::every]]
    if images:
        images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 * every / fps), loop=0)


def sheet_indices(n_frames: int, count: int) -> list[int]:
    """``count`` frame indices spread evenly over ``n_frames``, the first and the last included
    (all of them when there are fewer frames than ``count``)."""
    if n_frames <= 0 or count <= 0:
        return []
    if n_frames <= count:
        return list(range(n_frames))
    if count == 1:
        return [n_frames - 1]
    return [round(k * (n_frames - 1) / (count - 1)) for k in range(count)]


def contact_sheet(frames: list[np.ndarray], count: int = 16, columns: int = 8, scale: int = 2,
                  labels: bool = True) -> np.ndarray:
    """Evenly spaced frames tiled row by row, each ``scale``× larger (nearest neighbour).

    Args:
        frames: ``[H, W, 3]`` uint8 frames, one per control step (frame i is what the policy saw
            before its i-th action, counting from 0).
        count: how many frames to show; columns: tiles per row.
        labels: write each tile's step index (``t=i``) into its top-left corner.

    Returns:
        ``[rows·H·scale, columns·W·scale, 3]`` uint8; unused tiles at the end stay black.
    """
    from PIL import Image, ImageDraw

    if not frames:
        raise ValueError("no frames to tile")
    if count <= 0 or columns <= 0 or scale <= 0:
        raise ValueError(f"count, columns and scale must be positive, got {count}, {columns} and {scale}")
    picked = sheet_indices(len(frames), count)
    h, w = frames[0].shape[:2]
    th, tw = h * scale, w * scale
    columns = min(columns, len(picked))
    rows = -(-len(picked) // columns)
    sheet = Image.new("RGB", (columns * tw, rows * th))
    draw = ImageDraw.Draw(sheet)
    for k, i in enumerate(picked):
        x, y = (k % columns) * tw, (k // columns) * th
        sheet.paste(Image.fromarray(frames[i]).resize((tw, th), Image.NEAREST), (x, y))
        if labels:
            draw.text((x + 3, y + 2), f"t={i}", fill=(255, 255, 0))
    return np.asarray(sheet)


def save_contact_sheet(frames: list[np.ndarray], path: str, **kwargs) -> None:
    """Write :func:`contact_sheet` of ``frames`` as a PNG (keyword arguments as there)."""
    from PIL import Image

    Image.fromarray(contact_sheet(frames, **kwargs)).save(path)
