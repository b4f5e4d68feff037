"""`python -m distill.teacher.extract`: a tiny random WAN over .npy videos into a cache, killed and resumed."""

import numpy as np
import torch

from distill.teacher.cache import FeatureCache
from distill.teacher.extract import main
from distill.teacher.presets import save_random_checkpoint
from distill.teacher.wan import WanDiftConfig, WanDiftTeacher

CONFIG = "config/teacher/tiny-cpu.yaml"


def write_videos(data_dir, lengths):
    data_dir.mkdir()
    rng = np.random.default_rng(0)
    for i, frames in enumerate(lengths):
        np.save(data_dir / f"clip{i:02d}.npy", rng.integers(0, 256, (frames, 40, 60, 3), dtype=np.uint8))


def test_extract_resumes_to_the_same_cache_and_matches_the_teacher(tmp_path, capsys):
    root = save_random_checkpoint(tmp_path / "ckpt", "tiny")
    write_videos(tmp_path / "data", [9, 14, 5])
    args = ["--checkpoint", str(root), "--data", str(tmp_path / "data"), "--config", CONFIG, "--source", "npy"]

    assert main([*args, "--out", str(tmp_path / "resumed"), "--limit", "1"]) == 0  # "killed" after one clip
    assert len(FeatureCache(tmp_path / "resumed")) == 1
    assert main([*args, "--out", str(tmp_path / "resumed")]) == 0
    assert "'skipped': 1" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "oneshot")]) == 0

    resumed, oneshot = FeatureCache(tmp_path / "resumed"), FeatureCache(tmp_path / "oneshot")
    resumed.validate()
    assert sorted(resumed.clip_ids) == ["clip00", "clip01", "clip02"]
    assert resumed.teacher["model_id"] == "random/tiny" and resumed.teacher["block"] == 2
    teacher = WanDiftTeacher(WanDiftConfig.from_yaml(CONFIG, checkpoint=str(root)))
    for clip_id in resumed.clip_ids:
        assert torch.equal(resumed.latent_features(clip_id), oneshot.latent_features(clip_id))
        video = torch.from_numpy(np.load(tmp_path / "data" / f"{clip_id}.npy")).permute(0, 3, 1, 2) / 255.0
        want = teacher.features_per_frame(video.float()).half()
        assert torch.equal(resumed.features_per_frame(clip_id), want)


def test_parts_split_the_clips(tmp_path):
    root = save_random_checkpoint(tmp_path / "ckpt", "tiny")
    write_videos(tmp_path / "data", [5, 5, 5])
    args = ["--checkpoint", str(root), "--data", str(tmp_path / "data"), "--config", CONFIG, "--source", "npy",
            "--num-parts", "2"]
    main([*args, "--part", "0", "--out", str(tmp_path / "p0")])
    main([*args, "--part", "1", "--out", str(tmp_path / "p1")])
    assert FeatureCache(tmp_path / "p0").clip_ids == ["clip00", "clip02"]
    assert FeatureCache(tmp_path / "p1").clip_ids == ["clip01"]


def test_libero_source_reads_rendered_shards_of_one_split(tmp_path):
    import json

    from distill.data.shards import FORMAT, write_shard
    from distill.teacher.extract import LiberoVideos

    rng = np.random.default_rng(1)
    clips = [{"rgb": rng.integers(0, 256, (t, 16, 16, 3), dtype=np.uint8), "depth": np.ones((t, 16, 16), np.float32),
              "K": np.tile(np.eye(3), (t, 1, 1)), "T_wc": np.tile(np.eye(4), (t, 1, 1))} for t in (5, 9)]
    write_shard(tmp_path / "train" / "s0.npz", clips, [{"clip_id": "a"}, {"clip_id": "b"}], 0.001)
    rows = [{"clip_id": cid, "shard": "train/s0.npz", "slot": k, "frames": len(c["rgb"]), "split": split}
            for k, (cid, c, split) in enumerate(zip("ab", clips, ["train", "test"]))]
    (tmp_path / "index.json").write_text(json.dumps({"format": FORMAT, "clips": rows}))
    videos = list(LiberoVideos(tmp_path, "train"))
    assert len(LiberoVideos(tmp_path)) == 2 and [cid for cid, _ in videos] == ["a"]
    assert torch.equal(videos[0][1], torch.from_numpy(clips[0]["rgb"]).permute(0, 3, 1, 2).float() / 255.0)
