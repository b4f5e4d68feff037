"""Frames ↔ WAN latents: the 4k+1 rule, the frame→latent index π(t), and chunk plans for long videos.

WAN 2.1's VAE is causal in time and compresses 4×: latent 0 encodes frame 0 alone, latent k ≥ 1 encodes
frames 4k−3..4k. A clip must therefore hold 4k+1 frames (the VAE silently drops any others).

Long videos are cut into chunks that each begin with the video's frame 0 (a shared reference, as in the
papers' recipe) followed by a run of consecutive 4-frame groups. All indices here are *global*: latent g of
the video is the group of frames 4g−3..4g, whichever chunk computes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TEMPORAL_STRIDE = 4  # frames per latent frame (after latent 0)


def check_clip_length(num_frames: int) -> int:
    """Return the number of latent frames of a clip of `num_frames`; refuse lengths other than 4k+1."""
    if num_frames < 1 or (num_frames - 1) % TEMPORAL_STRIDE != 0:
        lower = 1 + TEMPORAL_STRIDE * max(0, (num_frames - 1) // TEMPORAL_STRIDE)
        raise ValueError(
            f"WAN clips need 4k+1 frames (1, 5, 9, ..., 81); got {num_frames}. The VAE would silently drop "
            f"the last {num_frames - lower} frame(s): trim to {lower} or pad to {lower + TEMPORAL_STRIDE}."
        )
    return 1 + (num_frames - 1) // TEMPORAL_STRIDE


def latent_of_frame(t: int) -> int:
    """π(t): the latent frame holding frame t (latent 0 ↔ frame 0, latent k ↔ frames 4k−3..4k) = ⌈t/4⌉."""
    if t < 0:
        raise ValueError(f"frame index must be >= 0, got {t}")
    return -(-t // TEMPORAL_STRIDE)


def frame_to_latent(num_frames: int) -> np.ndarray:
    """π for every frame of a video: `[num_frames] int64`, entry t = ⌈t/4⌉."""
    t = np.arange(num_frames, dtype=np.int64)
    return -(-t // TEMPORAL_STRIDE)


def num_video_latents(num_frames: int) -> int:
    """Latent frames needed to cover `num_frames` (any length ≥ 1): 1 + ⌈(T−1)/4⌉."""
    if num_frames < 1:
        raise ValueError(f"a video needs at least one frame, got {num_frames}")
    return 1 + math.ceil((num_frames - 1) / TEMPORAL_STRIDE)


@dataclass(frozen=True)
class Chunk:
    """One teacher forward: frame 0 followed by consecutive 4-frame groups.

    frames:  indices into the video, length 4k+1, frames[0] == 0. Indices past the video's end are clamped
             to its last frame (the final group is padded by repeating the last frame).
    latents: the global latent id of each of the chunk's k+1 latent frames; latents[0] == 0.
    take:    positions (into `latents`) whose features this chunk contributes to the video; every global
             latent is taken from exactly one chunk, the first that computes it.
    """

    frames: tuple[int, ...]
    latents: tuple[int, ...]
    take: tuple[int, ...]


@dataclass(frozen=True)
class ChunkPlan:
    num_frames: int  # T, frames of the video
    chunk_frames: int  # 4k+1, frames of a full chunk
    chunks: tuple[Chunk, ...]

    @property
    def num_latents(self) -> int:
        return num_video_latents(self.num_frames)


def plan_chunks(num_frames: int, chunk_frames: int) -> ChunkPlan:
    """Cut a video of `num_frames` (any T ≥ 1) into chunks of at most `chunk_frames` (= 4k+1) frames.

    Chunk c holds frame 0 and the global latents 1+c·k .. (c+1)·k. When the last chunk would be short it is
    slid back to end at the video's last latent, so every chunk but a lone one has the same length (the same
    temporal context for every feature); its latents already computed by the previous chunk are not taken.
    A video shorter than one chunk is one chunk of 4⌈(T−1)/4⌉+1 frames.
    """
    k = check_clip_length(chunk_frames) - 1
    if k < 1:
        raise ValueError(f"chunk_frames must be at least 5 (one 4-frame group after the reference), got {chunk_frames}")
    last_latent = num_video_latents(num_frames) - 1  # J
    last_frame = num_frames - 1

    def make(start: int, stop: int, first_new: int) -> Chunk:
        latents = (0, *range(start, stop + 1))
        frames = (0, *(min(f, last_frame) for g in range(start, stop + 1) for f in range(4 * g - 3, 4 * g + 1)))
        take = tuple(i for i, g in enumerate(latents) if g >= first_new)
        return Chunk(frames=frames, latents=latents, take=take)

    if last_latent <= k:
        return ChunkPlan(num_frames, chunk_frames, (make(1, last_latent, 0),))
    chunks = []
    next_new = 0  # first global latent not yet taken
    start = 1
    while next_new <= last_latent:
        start = min(start, last_latent - k + 1)
        chunks.append(make(start, start + k - 1, next_new))
        next_new = start + k
        start += k
    return ChunkPlan(num_frames, chunk_frames, tuple(chunks))
