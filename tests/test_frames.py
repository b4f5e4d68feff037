"""distill.data.frames: the decoded-frame cache (memory-mapped, atomic, bad frames counted or named)
and per-frame samples whose crops move the intrinsics exactly as a camera with another focal would."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from distill.data.frames import (
    FrameAugment,
    FrameCacheError,
    FrameDataset,
    build_frame_cache,
    crop_resize,
    open_frame_cache,
    write_frame_cache,
)
from distill.data.synthetic import make_synthetic_clip


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return build_frame_cache("synthetic:3:32x48", tmp_path_factory.mktemp("fc") / "cache", split="train")


def test_cache_holds_every_sampled_frame_memory_mapped(cache):
    c = open_frame_cache(cache)
    assert len(c) == 12 and c.meta["count"] == 12  # 3 clips x 4 frames
    assert isinstance(c.rgb, np.memmap) and c.rgb.dtype == np.uint8 and c.rgb.shape == (12, 32, 48, 3)
    assert c.depth.dtype == np.float16 and c.depth.shape == (12, 32, 48)
    clip = make_synthetic_clip(0, 4, 32, 48)  # the cache's first clip, decoded again
    np.testing.assert_allclose(c.depth[0].astype(np.float32), clip["depth"][0], rtol=1e-3)
    np.testing.assert_allclose(c.rgb[1] / 255.0, clip["images"][1].transpose(1, 2, 0), atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(c.K[0], clip["K"][0], rtol=1e-6)
    assert c.clip_ids[0] == clip["clip_id"] and c.frame_ids.tolist()[:4] == clip["frame_ids"].tolist()


def test_whole_frame_item_matches_the_cache(cache):
    ds = FrameDataset(cache)
    item = ds[5]
    c = open_frame_cache(cache)
    assert item["image"].shape == (3, 32, 48) and item["image"].dtype == torch.float32
    np.testing.assert_allclose(item["image"].numpy().transpose(1, 2, 0), c.rgb[5] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(item["depth"].numpy(), c.depth[5].astype(np.float32))
    assert torch.equal(item["valid"], item["depth"] > 0)
    assert float(item["focal_px"]) == pytest.approx(c.K[5][1, 1]) and item["crop"].tolist() == [0, 0, 1, 1, 0]


def test_a_centre_crop_is_the_view_of_a_camera_with_twice_the_focal():
    fov = 70.0
    wide = make_synthetic_clip(7, 1, 64, 64, fov_deg=fov)
    narrow_fov = math.degrees(2 * math.atan(math.tan(math.radians(fov / 2)) / 2))  # focal x 2
    narrow = make_synthetic_clip(7, 1, 64, 64, fov_deg=narrow_fov)
    rgb = (wide["images"][0].transpose(1, 2, 0) * 255).astype(np.uint8)
    _, depth, K2 = crop_resize(rgb, wide["depth"][0], wide["K"][0], (16, 16, 32, 32), (64, 64))
    np.testing.assert_allclose(K2, narrow["K"][0], rtol=1e-9, atol=1e-9)  # the intrinsics of the narrow camera
    both = (depth > 0) & (narrow["depth"][0] > 0)
    rel = np.abs(depth[both] - narrow["depth"][0][both]) / narrow["depth"][0][both]
    assert both.mean() > 0.9 and np.median(rel) < 0.01  # nearest-neighbour depth: same metres, same rays


def test_flip_mirrors_the_principal_point_and_the_pixels():
    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    depth = np.arange(1, 25, dtype=np.float32).reshape(4, 6)
    K = np.array([[5.0, 0, 2.5], [0, 5.0, 2.0], [0, 0, 1]])
    out_rgb, out_d, K2 = crop_resize(rgb, depth, K, (0, 0, 6, 4), (4, 6), flip=True)
    np.testing.assert_array_equal(out_d, depth[:, ::-1])
    np.testing.assert_array_equal(out_rgb, rgb[:, ::-1])
    assert K2[0, 2] == pytest.approx(6 - 2.5) and K2[0, 0] == 5.0 and K2[1, 2] == 2.0


def test_augmented_items_are_reproducible_and_their_focal_follows_the_crop(cache):
    ds = FrameDataset(cache, out_hw=(32, 48), augment=FrameAugment(scale=(0.5, 0.9)), seed=3)
    a, b = ds[4], ds[4]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["K"], b["K"])
    base = open_frame_cache(cache).K[4]
    for i in range(len(ds)):
        item = ds[i]
        x0, y0, cw, ch, flip = item["crop"].tolist()
        assert 0.5 - 0.05 <= cw <= 0.9 + 0.05 and cw == pytest.approx(ch, abs=0.05)
        assert float(item["focal_px"]) == pytest.approx(base[1, 1] / ch, rel=1e-5)  # zoom: focal / crop side
        assert float(item["K"][1, 1]) == float(item["focal_px"]) and flip in (0.0, 1.0)
    ds.set_epoch(1)
    assert not torch.equal(ds[4]["image"], a["image"])


def test_dataset_pickles_without_its_memory_maps(cache):
    ds = FrameDataset(cache)
    ds[0]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._cache is None and torch.equal(clone[2]["image"], ds[2]["image"])


def test_nan_pixels_are_masked_and_empty_depth_maps_skipped_and_counted(tmp_path):
    rgb = np.zeros((8, 8, 3), np.uint8)
    K = np.eye(3)
    nan_depth = np.ones((8, 8), np.float32)
    nan_depth[0, :3] = np.nan
    frames = [(rgb, nan_depth, K, "c", 0), (rgb, np.zeros((8, 8), np.float32), K, "c", 1),
              (rgb, np.full((8, 8), np.inf, np.float32), K, "c", 2), (rgb, np.ones((8, 8), np.float32), K, "c", 3)]
    c = open_frame_cache(write_frame_cache(frames, tmp_path / "c", source="test"))
    assert len(c) == 2 and c.frame_ids.tolist() == [0, 3]
    assert c.meta["skipped_empty_depth"] == 2 and c.meta["masked_nonfinite_pixels"] == 3 + 64
    assert (c.depth[0][0, :3] == 0).all() and np.isfinite(c.depth).all()
    with pytest.raises(FrameCacheError, match="no frame with valid depth"):
        write_frame_cache(frames[1:3], tmp_path / "empty", source="test")
    assert not (tmp_path / "empty").exists() and not list(tmp_path.glob(".empty.*"))  # nothing half-written
    with pytest.raises(FrameCacheError, match=r"frame 1 is \(4, 8\)"):
        write_frame_cache([frames[0], (rgb[:4], nan_depth[:4], K, "c", 1)], tmp_path / "mixed", source="test")


def test_a_truncated_or_missing_cache_is_named(cache, tmp_path):
    import shutil

    d = tmp_path / "broken"
    shutil.copytree(cache, d)
    with open(d / "depth.f16", "r+b") as f:
        f.truncate(100)
    with pytest.raises(FrameCacheError, match=r"depth.f16: 100 bytes"):
        open_frame_cache(d)
    with pytest.raises(FrameCacheError, match="no meta.json"):
        FrameDataset(tmp_path / "nothing")
    with pytest.raises(FileExistsError):
        build_frame_cache("synthetic:1:16x16", cache)
