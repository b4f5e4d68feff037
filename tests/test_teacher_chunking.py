"""Frames ↔ WAN latents: the 4k+1 rule, π(t), and chunk plans that start every chunk with frame 0."""

import numpy as np
import pytest

from distill.teacher.chunking import (
    check_clip_length,
    frame_to_latent,
    latent_of_frame,
    num_video_latents,
    plan_chunks,
)


def test_pi_maps_frame_zero_alone_and_groups_of_four():
    # latent 0 ↔ frame 0; latent k ↔ frames 4k−3..4k
    expected = [0, 1, 1, 1, 1, 2, 2, 2, 2, 3]
    assert [latent_of_frame(t) for t in range(10)] == expected
    assert frame_to_latent(10).tolist() == expected
    for k in range(1, 6):
        assert {latent_of_frame(t) for t in range(4 * k - 3, 4 * k + 1)} == {k}


@pytest.mark.parametrize("frames, latents", [(1, 1), (5, 2), (9, 3), (81, 21)])
def test_clip_lengths_4k_plus_1_are_accepted(frames, latents):
    assert check_clip_length(frames) == latents


@pytest.mark.parametrize("frames", [0, 2, 4, 8, 10, 80])
def test_other_clip_lengths_are_refused_with_the_rule(frames):
    with pytest.raises(ValueError, match="4k\\+1"):
        check_clip_length(frames)


@pytest.mark.parametrize("num_frames", [1, 2, 5, 8, 9, 10, 13, 17, 18, 33, 40, 81, 100])
def test_plan_covers_every_latent_once_and_every_chunk_starts_at_frame_0(num_frames):
    chunk_frames = 9  # k = 2 latents after the reference
    plan = plan_chunks(num_frames, chunk_frames)
    taken = []
    for chunk in plan.chunks:
        assert chunk.frames[0] == 0 and chunk.latents[0] == 0
        assert len(chunk.frames) == 4 * (len(chunk.latents) - 1) + 1
        if num_video_latents(num_frames) > 3:  # long videos: every chunk is full length
            assert len(chunk.frames) == chunk_frames
        for pos, g in enumerate(chunk.latents[1:], start=1):
            # the chunk's latent `pos` encodes frames 4·pos−3..4·pos of the chunk = the video's group g
            group = chunk.frames[4 * pos - 3:4 * pos + 1]
            assert list(group) == [min(f, num_frames - 1) for f in range(4 * g - 3, 4 * g + 1)]
        taken += [chunk.latents[p] for p in chunk.take]
    assert sorted(taken) == list(range(num_video_latents(num_frames)))
    assert plan.chunks[0].take[0] == 0  # the reference's features come from the first chunk


def test_long_video_last_chunk_slides_back_and_takes_only_new_latents():
    plan = plan_chunks(18, 9)  # latents 0..5: chunks {1,2}, {3,4}, then {4,5} slid back
    assert [c.latents for c in plan.chunks] == [(0, 1, 2), (0, 3, 4), (0, 4, 5)]
    assert [c.take for c in plan.chunks] == [(0, 1, 2), (1, 2), (2,)]
    assert plan.chunks[-1].frames == (0, 13, 14, 15, 16, 17, 17, 17, 17)  # last group padded by repetition


def test_short_video_is_one_padded_chunk():
    plan = plan_chunks(7, 81)
    assert len(plan.chunks) == 1
    assert plan.chunks[0].frames == (0, 1, 2, 3, 4, 5, 6, 6, 6)
    assert np.array_equal(frame_to_latent(7), [0, 1, 1, 1, 1, 2, 2])
