"""Teacher-feature cache: fp16 round trip, π expansion, resume, settings mismatch, corrupt files named."""

import json

import pytest
import torch

from distill.teacher.cache import (
    CacheError,
    CacheMismatchError,
    FeatureCache,
    FeatureCacheWriter,
)
from distill.teacher.chunking import frame_to_latent, num_video_latents

TEACHER = {"model_id": "random/tiny", "block": 2, "timestep": 749, "resolution": [32, 48], "chunk_frames": 9}
SHAPE = (6, 2, 3)  # [C, h, w]


def latents(num_frames, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(num_video_latents(num_frames), *SHAPE, generator=g) * 10


def fill(root, clips, shard_bytes=1 << 30):
    with FeatureCacheWriter(root, TEACHER, shard_bytes=shard_bytes) as w:
        for clip_id, frames, seed in clips:
            w.add(clip_id, latents(frames, seed), num_frames=frames)


def test_round_trip_is_fp16_of_the_input_and_frames_follow_pi(tmp_path):
    clips = [("a", 9, 0), ("b", 14, 1), ("c", 1, 2)]
    fill(tmp_path, clips, shard_bytes=400)  # small shards: clips spread over several files
    cache = FeatureCache(tmp_path, expect_teacher=TEACHER)
    assert len(cache.manifest["shards"]) >= 2 and sorted(cache.clip_ids) == ["a", "b", "c"]
    cache.validate()
    for clip_id, frames, seed in clips:
        want = latents(frames, seed).half()
        got = cache.latent_features(clip_id)
        assert got.dtype == torch.float16 and torch.equal(got, want)
        per_frame = cache.features_per_frame(clip_id)
        assert per_frame.shape == (frames, *SHAPE)
        assert torch.equal(per_frame, want[torch.from_numpy(frame_to_latent(frames))])
    assert torch.equal(cache.features_per_frame("b", [0, 5, 13]), latents(14, 1).half()[[0, 2, 4]])
    assert cache.teacher["block"] == 2


def test_resume_skips_cached_clips_and_unflushed_clips_are_redone(tmp_path):
    fill(tmp_path, [("a", 9, 0)])
    w = FeatureCacheWriter(tmp_path, TEACHER)
    assert "a" in w and "b" not in w
    w.add("b", latents(9, 1), num_frames=9)  # never flushed: as if killed here
    del w
    w = FeatureCacheWriter(tmp_path, TEACHER)
    assert "a" in w and "b" not in w
    w.add("b", latents(9, 1), num_frames=9)
    w.close()
    cache = FeatureCache(tmp_path)
    assert sorted(cache.clip_ids) == ["a", "b"] and len(cache.manifest["shards"]) == 2
    cache.validate()


def test_other_teacher_settings_are_refused(tmp_path):
    fill(tmp_path, [("a", 9, 0)])
    with pytest.raises(CacheMismatchError, match="timestep"):
        FeatureCacheWriter(tmp_path, {**TEACHER, "timestep": 500})
    with pytest.raises(CacheMismatchError, match="block"):
        FeatureCache(tmp_path, expect_teacher={**TEACHER, "block": 3})


def test_wrong_row_count_and_non_finite_values_are_refused(tmp_path):
    with FeatureCacheWriter(tmp_path, TEACHER) as w:
        with pytest.raises(ValueError, match="expected \\[3, C, h, w\\]"):
            w.add("a", latents(5, 0), num_frames=9)
        with pytest.raises(ValueError, match="float16"):
            w.add("b", latents(9, 0) * 1e5, num_frames=9)  # overflows fp16


def test_truncated_shard_is_named(tmp_path):
    fill(tmp_path, [("a", 9, 0)])
    shard = tmp_path / "shard-00000.safetensors"
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(CacheError, match="shard-00000.safetensors"):
        FeatureCache(tmp_path)


def test_flipped_bytes_are_named_by_validate(tmp_path):
    fill(tmp_path, [("a", 9, 0)])
    shard = tmp_path / "shard-00000.safetensors"
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF
    shard.write_bytes(bytes(data))
    cache = FeatureCache(tmp_path)  # same size and header: opening cannot tell
    with pytest.raises(CacheError, match="shard-00000.safetensors.*sha256"):
        cache.validate()


def test_garbled_header_and_manifest_are_named(tmp_path):
    fill(tmp_path, [("a", 9, 0)])
    shard = tmp_path / "shard-00000.safetensors"
    data = bytearray(shard.read_bytes())
    data[8:16] = b"\x00" * 8  # break the JSON header
    shard.write_bytes(bytes(data))
    with pytest.raises(CacheError, match="shard-00000.safetensors"):
        FeatureCache(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(CacheError, match="manifest.json"):
        FeatureCache(tmp_path)


def test_manifest_records_offsets_and_settings(tmp_path):
    fill(tmp_path, [("a", 9, 0), ("b", 5, 1)])
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["teacher"] == TEACHER
    assert manifest["feature"] == {"shape": list(SHAPE), "dtype": "float16"}
    assert manifest["clips"]["a"] == {"shard": 0, "offset": 0, "latents": 3, "frames": 9}
    assert manifest["clips"]["b"] == {"shard": 0, "offset": 3, "latents": 2, "frames": 5}
    assert not list(tmp_path.glob(".*.tmp"))
    assert manifest["shards"][0]["rows"] == 5


def test_part_caches_read_as_one_and_refuse_duplicates(tmp_path):
    from distill.teacher.cache import FeatureCaches

    fill(tmp_path / "p0", [("a", 9, 0)])
    fill(tmp_path / "p1", [("b", 5, 1)])
    both = FeatureCaches([tmp_path / "p0", tmp_path / "p1"])
    assert sorted(both.clip_ids) == ["a", "b"]
    assert torch.equal(both.latent_features("b"), latents(5, 1).half())
    fill(tmp_path / "p2", [("a", 9, 0)])
    with pytest.raises(CacheError, match="'a'"):
        FeatureCaches([tmp_path / "p0", tmp_path / "p2"])
