"""distill.frame_recipe: the per-frame student overfits a couple of frames through the shared trainer,
exports a format version 2 artifact that the runtime loads and whose ONNX depth matches torch; the
teacher path adds its terms when a feature cache is named; empty crops are counted skips."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from distill import frame_recipe as fr
from distill.config import ConfigError
from distill.data.augment import PhotometricAugment
from distill.data.frames import FrameDataset, open_frame_cache
from distill.export import export_artifact_v2
from vega_ros import artifact as art
from vega_ros import contract

TINY = "config/distill/student-v2-tiny.yaml"


def _cfg(tmp_path, *extra):
    return fr.FrameDistillConfig.from_yaml(TINY, [f"data.cache={tmp_path / 'frames'}", "data.max_frames=2",
                                                  "data.crop_scale=[1.0, 1.0]", "data.flip=false", *extra])


def test_tiny_recipe_overfits_two_frames_and_exports_a_v2_artifact_the_runtime_loads(tmp_path):
    torch.manual_seed(0)
    cfg = _cfg(tmp_path, "trainer.max_steps=60", "trainer.batch_size=2", "trainer.lr=1e-2", "trainer.warmup_steps=5",
               "trainer.checkpoint_every=60")
    run = tmp_path / "run"
    first = fr.train(cfg, str(run), TINY, {"max_steps": 1})
    last = fr.train(cfg, str(run), TINY)  # resumes at step 1
    assert len(open_frame_cache(tmp_path / "frames")) == 2
    assert last["metric"] < 0.25 * first["metric"] and last["silog"] < 0.5 * first["silog"], (first, last)
    frame, fields = fr.export_frame_from_run(str(run))
    assert fields["training"]["step"] == 60 and fields["training"]["loss_terms"] == ["silog", "gradient", "metric"]
    a = export_artifact_v2(frame, str(tmp_path / "art"), name="tiny-v2", card_fields=fields)
    loaded = art.load_artifact(a.path)
    assert loaded.card.format_version == 2 and loaded.card.canonical_focal_px == frame.canonical_focal_px
    item = FrameDataset(tmp_path / "frames")[0]
    x, f = item["image"][None], item["focal_px"].view(1)
    sess = ort.InferenceSession(loaded.frame_path, providers=["CPUExecutionProvider"])
    depth, conf, _ = sess.run(list(contract.FRAME_OUTPUTS), {contract.FRAME_IMAGE: x.numpy(), contract.FRAME_FOCAL: f.numpy()})
    with torch.no_grad():
        want = frame(x, f)[0].numpy()
    np.testing.assert_allclose(depth, want, rtol=1e-4, atol=1e-5)
    valid = item["valid"].numpy()
    rel = np.abs(depth[0][valid] - item["depth"].numpy()[valid]) / item["depth"].numpy()[valid]
    assert np.median(rel) < 0.15  # it learned these two frames' metres


def test_an_empty_crop_is_a_counted_skip_not_a_crash():
    cfg = fr.FrameModelConfig(student="tiny", image_size=(32, 48))
    model = fr.FrameModel(cfg, fr.FrameLossWeights())
    batch = {"image": torch.rand(2, 3, 32, 48), "focal_px": torch.tensor([28.0, 28.0]),
             "depth": torch.zeros(2, 32, 48), "valid": torch.zeros(2, 32, 48, dtype=torch.bool)}
    loss, logs = fr.FrameObjective(fr.FrameLossWeights())(model, batch, 0)
    assert logs["skipped_empty"] == 1.0 and float(loss.detach()) == 0.0
    loss.backward()  # still a graph: the trainer's step goes through


def test_crop_feature_map_follows_the_crop_and_the_flip():
    feats = torch.arange(2 * 4 * 6, dtype=torch.float32).reshape(2, 4, 6)
    torch.testing.assert_close(fr.crop_feature_map(feats, torch.tensor([0, 0, 1, 1, 0.0]), (4, 6)), feats)
    torch.testing.assert_close(fr.crop_feature_map(feats, torch.tensor([0, 0, 1, 1, 1.0]), (4, 6)), feats.flip(-1))
    right_half = fr.crop_feature_map(feats, torch.tensor([0.5, 0, 0.5, 1, 0.0]), (4, 3))
    torch.testing.assert_close(right_half, feats[:, :, 3:])


def test_teacher_terms_join_when_a_feature_cache_is_named(tmp_path):
    from distill.teacher.cache import FeatureCacheWriter

    cfg = _cfg(tmp_path)
    fr.build_frame_dataset(cfg)  # builds the frame cache
    frames = open_frame_cache(tmp_path / "frames")
    with FeatureCacheWriter(tmp_path / "teacher", {"model": "test", "block": 1, "timestep": 1}) as w:
        for clip_id in sorted(set(frames.clip_ids)):
            t = 1 + max(int(f) for c, f in zip(frames.clip_ids, frames.frame_ids) if c == clip_id)
            w.add(clip_id, torch.randn(1 + (t + 2) // 4, 8, 3, 4), num_frames=t)  # 1 + ceil((T - 1) / 4) latent rows
    with pytest.raises(ConfigError, match="teacher_cache"):
        _cfg(tmp_path, "losses.feature=1.0")
    cfg = _cfg(tmp_path, f"teacher_cache={tmp_path / 'teacher'}", "model.teacher_dim=8", "losses.feature=1.0",
               "losses.global_align=0.5")
    data = fr.build_frame_dataset(cfg)
    assert data[0]["teacher"].shape == (8, 2, 3)  # on the student's token grid (32 x 48 / 16)
    model = fr.FrameModel(cfg.model, cfg.losses)
    loss, logs = fr.FrameObjective(cfg.losses)(model, fr.collate([data[0], data[1]]), 0)
    assert {"feature", "global", "silog", "metric"} <= set(logs) and torch.isfinite(loss)
    loss.backward()
    assert model.teacher_proj.weight.grad is not None


def test_several_roots_pool_their_frames_with_one_cache_each(tmp_path):
    cfg = fr.FrameDistillConfig.from_yaml(TINY, ["data.root=[synthetic:2:32x48, synthetic:3:32x48]",
                                                 f"data.cache=[{tmp_path / 'a'}, {tmp_path / 'b'}]", "data.repeats=2"])
    data = fr.build_frame_dataset(cfg)
    assert len(open_frame_cache(tmp_path / "a")) == 8 and len(open_frame_cache(tmp_path / "b")) == 12
    assert len(data) == 2 * (8 + 12) and data[len(data) - 1]["image"].shape == (3, 32, 48)
    with pytest.raises(ConfigError, match="2 roots but 1 caches"):
        fr.FrameDistillConfig.from_yaml(TINY, ["data.root=[synthetic:2:32x48, synthetic:3:32x48]",
                                               f"data.cache={tmp_path / 'c'}"]).data.sources()
    default = fr.FrameDistillConfig.from_yaml(TINY, ["data.root=[data/libero_sim, synthetic:2:32x48]"]).data.sources()
    assert default == [("data/libero_sim", "data/libero_sim-frames-train"),
                       ("synthetic:2:32x48", "data/synthetic_2_32x48-frames-train")]


def test_repeats_per_root_set_the_data_mix(tmp_path):
    roots = ["data.root=[synthetic:2:32x48, synthetic:3:32x48]", f"data.cache=[{tmp_path / 'a'}, {tmp_path / 'b'}]"]
    cfg = fr.FrameDistillConfig.from_yaml(TINY, [*roots, "data.repeats=[3, 1]"])
    data = fr.build_frame_dataset(cfg)
    assert cfg.data.repeats_per_root() == [3, 1]
    assert [len(d) for d in data.datasets] == [3 * 8, 12]  # root a: 8 frames listed 3 times each
    for bad in ("[3]", "[3, 0]"):
        with pytest.raises(ConfigError, match="one per root"):
            fr.FrameDistillConfig.from_yaml(TINY, [*roots, f"data.repeats={bad}"]).data.repeats_per_root()


def test_cpu_bf16_autocast_trains_with_float32_losses(tmp_path):
    cfg = _cfg(tmp_path, "trainer.max_steps=3", "trainer.bf16_cpu=true", "trainer.checkpoint_every=3")
    last = fr.train(cfg, str(tmp_path / "run"), TINY)
    assert np.isfinite(last["loss"]) and last["skipped_empty"] == 0.0


def test_training_pictures_show_rgb_truth_prediction_and_error(tmp_path, capsys):
    import cv2

    cfg = _cfg(tmp_path)
    batch = fr.collate([fr.build_frame_dataset(cfg)[i] for i in range(2)])
    model = fr.FrameModel(cfg.model, cfg.losses).eval()
    with torch.no_grad():
        fr.save_frame_picture(model, batch, 7, str(tmp_path / "images"))
    png = cv2.imread(str(tmp_path / "images" / "step_0000007.png"))
    assert png.shape == (2 * 32, 4 * 48, 3)
    assert "step 7 frame 1: metric abs_rel" in capsys.readouterr().out


def test_photometric_takes_true_false_or_the_augmentations_fields():
    assert fr.FrameDistillConfig.from_yaml(TINY, ["data.photometric=true"]).data.photometric_augment() == PhotometricAugment()
    assert fr.FrameDistillConfig.from_yaml(TINY, ["data.photometric=false"]).data.photometric_augment() is None
    strong = fr.FrameDistillConfig.from_yaml(TINY, ["data.photometric={hue: 0.5, grayscale_p: 0.1}"])
    assert strong.data.photometric_augment() == PhotometricAugment(hue=0.5, grayscale_p=0.1)
    with pytest.raises(ConfigError, match="data.photometric.*did you mean 'hue'"):
        fr.FrameDistillConfig.from_yaml(TINY, ["data.photometric={hues: 0.5}"])
    with pytest.raises(ConfigError, match="data.photometric.*probability"):
        fr.FrameDistillConfig.from_yaml(TINY, ["data.photometric={blur_p: 2.0}"])
